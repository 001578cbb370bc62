"""Packing a project folder: what goes in, reproducible hashes, symlinks, the size limit."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

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


def test_a_symlink_inside_is_kept_and_one_outside_is_refused(tmp_path: Path) -> None:
    folder = make(tmp_path / "p", {"predictor.py": "", "weights/v1.bin": "w"})
    (folder / "latest.bin").symlink_to(folder / "weights" / "v1.bin")
    with tarfile.open(fileobj=io.BytesIO(project.pack(folder).data), mode="r:gz") as tar:
        assert tar.getmember("latest.bin").linkname == "weights/v1.bin"
    (tmp_path / "outside.bin").write_text("o")
    (folder / "model.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(CortexError, match=r"model.bin in the project folder is a symlink to .*"):
        project.pack(folder)


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
