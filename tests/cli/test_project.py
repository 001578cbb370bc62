"""Packing a project folder: what goes in, reproducible hashes, symlinks, special files, the
limits of a ConfigMap and of the pod's unpack step."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cortex import contracts
from cortex.cli import project
from cortex.errors import CortexError


def names(archive: project.Archive) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tar:
        return tar.getnames()


def make(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_dotfiles_caches_and_virtualenvs_are_left_out(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "cortex.yaml": "- name: a",
            "predictor.py": "x = 1",
            "lib/helpers.py": "y = 2",
            ".env": "SECRET=1",
            ".git/config": "[core]",
            "__pycache__/predictor.cpython-311.pyc": "",
            "lib/__pycache__/helpers.cpython-311.pyc": "",
            "stale.pyc": "",
            "venv/pyvenv.cfg": "home = /usr",
            "venv/lib/site.py": "",
            "node_modules/x/index.js": "",
        },
    )
    assert names(project.pack(tmp_path)) == ["cortex.yaml", "lib/helpers.py", "predictor.py"]


def test_cortexignore_uses_gitignore_syntax(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".cortexignore": "data/\n*.ckpt\n!keep.ckpt\n/notes.md\n",
            "predictor.py": "",
            "data/train.csv": "",
            "model.ckpt": "",
            "keep.ckpt": "",
            "notes.md": "",
            "docs/notes.md": "",
        },
    )
    assert names(project.pack(tmp_path)) == ["docs/notes.md", "keep.ckpt", "predictor.py"]


def test_the_hash_follows_the_content_only(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": "x = 1", "lib/a.py": "a"})
    first = project.pack(folder)
    os.utime(folder / "predictor.py", (1, 1))  # a touch is not a change
    assert project.pack(folder).sha256 == first.sha256
    (folder / "predictor.py").write_text("x = 2")
    assert project.pack(folder).sha256 != first.sha256


def members(archive: project.Archive) -> dict[str, tuple[bool, bytes]]:
    """Each member's name: whether it is a regular file, and its bytes."""
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tar:
        found = {}
        for member in tar:
            data = tar.extractfile(member) if member.isreg() else None
            found[member.name] = (member.isreg(), data.read() if data else b"")
        return found


def test_a_symlink_inside_goes_in_as_a_copy_of_its_file_or_folder(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": "", "weights/v1.bin": "w", "lib/a.py": "a"})
    (folder / "latest.bin").symlink_to(folder / "weights" / "v1.bin")
    (folder / "vendored").symlink_to("lib")

    packed = members(project.pack(folder))

    assert packed["latest.bin"] == (True, b"w")
    assert packed["vendored/a.py"] == (True, b"a")
    assert all(regular for regular, _ in packed.values())


@pytest.mark.parametrize(
    ("make_link", "said"),
    [
        (
            lambda f, out: (f / "model.bin").symlink_to(out),
            r"to .*outside\.bin, outside the folder",
        ),
        (
            lambda f, out: (f / "model.bin").symlink_to(f / "gone"),
            r"to .*gone, which does not exist",
        ),
        (
            lambda f, out: (f / "model.bin").symlink_to("model.bin"),
            r"that loops, so the API's pods",
        ),
        (lambda f, out: (f / "lib" / "up").symlink_to(".."), r"to .*, a folder it is inside of"),
    ],
    ids=["outside", "dangling", "loop", "into-its-own-folder"],
)
def test_a_symlink_the_pod_could_not_have_is_refused(
    tmp_path: Path, make_link: Callable[[Path, Path], None], said: str
) -> None:
    folder = make(tmp_path / "p", {"predictor.py": "", "lib/a.py": ""})
    (tmp_path / "outside.bin").write_text("o")
    make_link(folder, tmp_path / "outside.bin")

    with pytest.raises(CortexError) as caught:
        project.pack(folder)

    assert re.match(r"(model\.bin|lib/up) in the project folder is a symlink ", str(caught.value))
    assert re.search(said, str(caught.value))


def test_fifos_and_sockets_are_refused(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": ""})
    os.mkfifo(folder / "queue")
    with pytest.raises(
        CortexError, match=r"^queue in the project folder is a FIFO, .*cortexignore"
    ):
        project.pack(folder)  # reading it would block forever
    (folder / "queue").unlink()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "s.sock"))
        with pytest.raises(CortexError, match=r"^s.sock in the project folder is a socket"):
            project.pack(folder)


def test_a_project_bigger_than_pods_unpack_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": ""})
    with (folder / "zeros.bin").open("wb") as sparse:  # no disk used, nothing worth reading
        sparse.truncate(contracts.PROJECT_MAX_BYTES * 3 // 2)

    with pytest.raises(CortexError, match=r"holds 1.5 GiB of files, more than the 1.0 GiB an"):
        project.pack(folder)


def test_a_project_of_more_entries_than_pods_unpack_is_refused(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": ""})
    for i in range(contracts.PROJECT_MAX_ENTRIES // 2):
        (folder / f"d{i}").mkdir()
        (folder / f"d{i}" / "x").touch()

    with pytest.raises(CortexError, match=r"holds 10,001 files and folders, more than the 10,000"):
        project.pack(folder)


def test_a_packed_project_unpacks_as_the_pod_does_to_the_same_files(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": "x = 1", "lib/deep/a.py": "a"})
    (folder / "run.sh").write_text("#!/bin/sh")
    (folder / "run.sh").chmod(0o755)
    (folder / "alias.py").symlink_to("predictor.py")
    (tmp_path / "project.tar.gz").write_bytes(project.pack(folder).data)
    (tmp_path / "out").mkdir()

    command = contracts.unpack_command(str(tmp_path / "project.tar.gz"), str(tmp_path / "out"))
    subprocess.run([sys.executable, *command[1:]], check=True, capture_output=True, timeout=60)

    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "alias.py",
        "lib/deep/a.py",
        "predictor.py",
        "run.sh",
    ]
    assert (out / "alias.py").read_text() == "x = 1" and not (out / "alias.py").is_symlink()
    assert os.access(out / "run.sh", os.X_OK) and not os.access(out / "alias.py", os.X_OK)


def test_a_project_over_the_limit_names_its_biggest_files(tmp_path: Path) -> None:
    folder = make(tmp_path, {"predictor.py": "x"})
    (folder / "model.bin").write_bytes(os.urandom(3000))
    (folder / "vocab.txt").write_bytes(os.urandom(1500))
    archive = project.pack(folder)
    project.check_size(archive, folder)  # fits the real limit
    with pytest.raises(CortexError) as caught:
        project.check_size(archive, folder, limit=1024)
    message = str(caught.value)
    assert "more than the 1.0 KiB a ConfigMap holds" in message
    assert "biggest files: model.bin (2.9 KiB), vocab.txt (1.5 KiB), predictor.py (1 bytes)" in (
        message
    )
    assert ".cortexignore" in message and "predictor.image" in message
