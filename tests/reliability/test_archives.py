"""Hostile project archives, unpacked by the init container's own command: nothing is ever written
outside the project folder, and a refused archive writes nothing at all.

Each archive is built here, in memory, as an attacker who may create ConfigMaps would: names that
climb out, absolute paths, links (symbolic, hard, chained, replacing a folder of the same name, at
the end of a path longer than PATH_MAX: the shape of CVE-2025-4517), devices, FIFOs, sparse files,
sizes that lie, a real gzip bomb, endless entries, a header smuggled behind a file's declared
size, broken gzip, a zip.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex import contracts, unpack
from cortex.k8s import OperatorSettings, render_deployment
from tests.k8s.conftest import make_api, owner_of
from tests.reliability.conftest import Figures

Entry = tuple[tarfile.TarInfo, bytes | None]
ORIGINAL = b"the node's own file\n"


def file(name: str, data: bytes = b"pwned\n", **fields: Any) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def special(name: str, kind: bytes, linkname: str = "", **fields: Any) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    for key, value in fields.items():
        setattr(info, key, value)
    return info, None


def link(name: str, target: str) -> Entry:
    return special(name, tarfile.SYMTYPE, target)


def hardlink(name: str, target: str) -> Entry:
    return special(name, tarfile.LNKTYPE, target)


def folder(name: str) -> Entry:
    return special(name, tarfile.DIRTYPE)


def tar_gz(entries: list[Entry], level: int = 6) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=level, mtime=0)


def sized(name: str, claimed: int) -> Entry:
    """A header claiming ``claimed`` bytes (in its pax size, past what ustar holds), none given."""
    info = tarfile.TarInfo(name)
    info.pax_headers = {"size": str(claimed)}
    return info, b""


def sparse(name: str, real_size: int) -> bytes:
    """A pax 1.0 sparse file (as GNU tar writes): a small map and data standing for a big file."""
    headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    data = b"1\n0\n1\n".ljust(512, b"\0") + b"x"  # one extent: 1 byte at offset 0
    return tar_gz([file(f"GNUSparseFile.0/{name}", data, pax_headers=headers)])


def smuggled(outside: Path) -> bytes:
    """A file whose data runs past its declared 3 bytes, the rest crafted as a header of its own
    (a ustar header aiming outside), as a tar reader that trusted the data would see it."""
    hidden = io.BytesIO()
    with tarfile.open(fileobj=hidden, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info, data = file(f"{outside}/pwned")
        tar.addfile(info, io.BytesIO(data or b""))
    first, _ = file("innocent.py", b"ok\n")
    raw = first.tobuf(tarfile.USTAR_FORMAT) + b"ok\n".ljust(512, b"\0") + hidden.getvalue()
    return gzip.compress(raw, mtime=0)


@functools.cache
def bomb() -> bytes:
    """About 1 MiB of gzip that really holds a file of PROJECT_MAX_BYTES + 1 zeros."""
    out = io.BytesIO()
    size = contracts.PROJECT_MAX_BYTES + 1
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        tar.addfile(info, _Zeros(size))
    return out.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def deep(levels: int, name_length: int) -> str:
    return "/".join(f"{i:0{name_length}d}" for i in range(levels))


def zip_archive(outside: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../outside/pwned", b"pwned")
        archive.writestr(f"{outside}/pwned", b"pwned")
    return out.getvalue()


UP = "../../outside"  # from mnt/project to the folder beside mnt
LONG_PATH = deep(17, 250)  # 17 folders of 250 characters: more than PATH_MAX (4096)
LIMIT = contracts.PROJECT_MAX_BYTES
ENTRIES = contracts.PROJECT_MAX_ENTRIES

# Each hostile archive by name, built for the folder ``outside`` beside the project it aims at.
HOSTILE: dict[str, Callable[[Path], bytes]] = {
    "dot-dot": lambda out: tar_gz([file(f"{UP}/pwned")]),
    "dot-dot-inside-a-path": lambda out: tar_gz([file(f"lib/../{UP}/pwned")]),
    "absolute": lambda out: tar_gz([file(f"{out}/pwned")]),
    "symlink-absolute": lambda out: tar_gz([link("out", str(out)), file("out/pwned")]),
    "symlink-relative": lambda out: tar_gz([link("out", UP), file("out/pwned")]),
    "symlink-chain": lambda out: tar_gz(
        [link("a", "b"), link("b", "c"), link("c", UP), file("a/pwned")]
    ),
    "symlink-to-a-file": lambda out: tar_gz([link("keep", f"{out}/keep"), file("keep")]),
    "hardlink-absolute": lambda out: tar_gz([hardlink("keep", f"{out}/keep"), file("keep")]),
    "hardlink-relative": lambda out: tar_gz([hardlink("keep", f"{UP}/keep"), file("keep")]),
    "symlink-replacing-a-folder": lambda out: tar_gz(
        [folder("d"), file("d/ok.py"), link("d", UP), file("d/pwned")]
    ),
    "file-given-twice": lambda out: tar_gz([file("a.py", b"first"), file("a.py", b"second")]),
    "path-through-a-file": lambda out: tar_gz([file("a"), file("a/b")]),
    "past-path-max-then-out": lambda out: tar_gz(
        [folder(LONG_PATH), link(f"{LONG_PATH}/l", "../" * 17 + UP), file(f"{LONG_PATH}/l/x")]
    ),
    "character-device": lambda out: tar_gz(
        [special("tty", tarfile.CHRTYPE, devmajor=5, devminor=0)]
    ),
    "block-device": lambda out: tar_gz([special("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)]),
    "fifo": lambda out: tar_gz([special("pipe", tarfile.FIFOTYPE)]),
    "nul-in-a-name": lambda out: tar_gz([file("a.py", pax_headers={"path": "a\x00/../../x"})]),
    "sparse-file": lambda out: sparse("s.bin", LIMIT * 8),
    "negative-size": lambda out: tar_gz([sized("n.bin", -4096), file("after.py")]),
    "size-claimed-past-the-limit": lambda out: tar_gz([sized("huge.bin", 2 * LIMIT)]),
    "sizes-adding-up-past-the-limit": lambda out: tar_gz(
        [sized(f"part{i}.bin", LIMIT // 3 + 1) for i in range(3)]
    ),
    "gzip-bomb": lambda out: bomb(),
    "more-entries-than-the-limit": lambda out: many_files(),
    "folders-implied-past-the-limit": lambda out: tar_gz([file(deep(ENTRIES + 1, 1) + "/f")]),
    "header-smuggled-past-a-file": smuggled,
    "truncated": lambda out: tar_gz([file("a.py", b"x" * 100_000)], level=0)[:50_000],
    "zip": zip_archive,
    "garbage": lambda out: b"\x1f\x8b" + b"\xff" * 100,
}


@functools.cache
def many_files() -> bytes:
    return tar_gz([file(f"f{i}", b"") for i in range(ENTRIES + 1)], level=1)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: its bytes for files, None for the rest (links not followed)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        if p.is_file() and not p.is_symlink()
        else None
        for p in sorted(root.rglob("*"))
    }


def init_command() -> list[str]:
    api = make_api("hostile", project={"configMap": "hostile-project"})
    pod = render_deployment(api, owner_of(api), OperatorSettings())["spec"]["template"]["spec"]
    [init] = [c for c in pod["initContainers"] if c["name"] == "project"]  # the unpack step
    command: list[str] = init["command"]
    return command


def run_as_the_pod(
    command: list[str], base: Path, archive: bytes
) -> subprocess.CompletedProcess[str]:
    """Lay out the init container's mounts under ``base`` and run its command there."""
    (base / "mnt" / "project-archive").mkdir(parents=True)
    (base / "mnt" / "project").mkdir()
    (base / "mnt" / "project-archive" / "project.tar.gz").write_bytes(archive)
    args = [arg.replace("/mnt/", f"{base}/mnt/") for arg in command]
    assert args[0] == "python"
    return subprocess.run(
        [sys.executable, *args[1:]], capture_output=True, text=True, timeout=120, cwd=base
    )


LAYOUT = {
    "outside",
    "outside/keep",
    "mnt",
    "mnt/project-archive",
    "mnt/project-archive/project.tar.gz",
}
REFUSED = "error: cannot unpack the project archive "


def test_no_hostile_archive_writes_outside_or_anything_at_all(
    tmp_path: Path, figures: Figures
) -> None:
    command = init_command()

    def attempt(name: str) -> tuple[str, subprocess.CompletedProcess[str], Path]:
        base = tmp_path / name
        (base / "outside").mkdir(parents=True)
        (base / "outside" / "keep").write_bytes(ORIGINAL)
        return name, run_as_the_pod(command, base, HOSTILE[name](base / "outside")), base

    with ThreadPoolExecutor(max_workers=4) as pool:  # a process each: 4 at a time
        results = list(pool.map(attempt, HOSTILE))

    written_outside, wrong = 0, []
    for name, result, base in results:
        around = tree(base)
        inside = {path for path in around if path.startswith("mnt/project/")}
        beside = set(around) - inside - {"mnt/project", *LAYOUT}
        written_outside += len(beside) + (around["outside/keep"] != ORIGINAL)
        lines = result.stderr.splitlines()
        refused = result.returncode == 1 and len(lines) == 1 and lines[0].startswith(REFUSED)
        if beside or inside or not refused:
            wrong.append(f"{name}: exit {result.returncode}, wrote {sorted(beside | inside)}")
            wrong.append(f"  {result.stderr.strip()[-500:]}")
    figures.record(
        "hostile project archives, unpacked by the pod's init command",
        sent=len(HOSTILE),
        lost=written_outside,
        not_refused=len(wrong) // 2,
    )
    assert wrong == [], "\n".join(wrong)


def test_each_refusal_says_what_was_wrong(tmp_path: Path) -> None:
    said = {
        "dot-dot": "'../../outside/pwned' leaves the folder through '..'",
        "symlink-chain": "'a' is a symbolic link; a project holds files and folders only",
        "hardlink-relative": "'keep' is a hard link",
        "fifo": "'pipe' is a FIFO",
        "character-device": "'tty' is a character device",
        "sparse-file": "'s.bin' is a sparse file",
        "file-given-twice": "'a.py' appears twice in the archive",
        "path-through-a-file": "'a/b' is inside 'a', a file",
        "symlink-replacing-a-folder": "'d' is a symbolic link",
        "size-claimed-past-the-limit": "its files add up to more than 1.0 GiB (the limit) at "
        "'huge.bin' (2,147,483,648 bytes)",
        "gzip-bomb": "more than 1.0 GiB (the limit) at 'zeros.bin' (1,073,741,825 bytes)",
        "more-entries-than-the-limit": "more than 10,000 files and folders (the limit)",
        "folders-implied-past-the-limit": "more than 10,000 files and folders (the limit)",
        "negative-size": "'n.bin' claims a negative size",
        "zip": "not a readable .tar.gz",
    }
    for name, words in said.items():
        (tmp_path / name).mkdir()
        archive = tmp_path / f"{name}.tar.gz"
        archive.write_bytes(HOSTILE[name](tmp_path / "outside"))
        try:
            unpack.unpack(archive, tmp_path / name)
        except unpack.ArchiveError as exc:
            assert words in str(exc), f"{name}: {exc}"
        else:
            raise AssertionError(f"{name} was unpacked")


def test_data_past_a_files_declared_size_is_never_written(tmp_path: Path) -> None:
    first, _ = file("a.py", b"ok\n")
    raw = first.tobuf(tarfile.USTAR_FORMAT) + b"ok\n" + b"\xff" * (1024 * 1024)  # no header

    result = run_as_the_pod(init_command(), tmp_path, gzip.compress(raw, mtime=0))

    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "mnt" / "project") == {"a.py": b"ok\n"}


def test_a_good_archive_unpacks_with_its_folders_and_modes(tmp_path: Path) -> None:
    entries = [
        folder("."),
        folder("./lib"),
        file("./lib/a.py", b"A = 1\n"),
        file("run.sh", b"x", mode=0o755),
    ]

    result = run_as_the_pod(init_command(), tmp_path, tar_gz(entries))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"unpacked 2 files (7 bytes) into {tmp_path}/mnt/project\n"
    project = tmp_path / "mnt" / "project"
    assert tree(project) == {"lib": None, "lib/a.py": b"A = 1\n", "run.sh": b"x"}
    assert (project / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (project / "lib" / "a.py").stat().st_mode & 0o777 == 0o644


def test_a_second_run_over_a_half_written_folder_overwrites_it(tmp_path: Path) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "a.py").write_text("half wri")
    (tmp_path / "p.tar.gz").write_bytes(tar_gz([file("a.py", b"whole\n")]))

    unpack.unpack(tmp_path / "p.tar.gz", target)

    assert tree(target) == {"a.py": b"whole\n"}


def test_a_link_already_in_the_folder_is_never_followed(tmp_path: Path) -> None:
    target, outside = tmp_path / "project", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (outside / "keep").write_bytes(ORIGINAL)
    (target / "lib").symlink_to(outside)
    (target / "a.py").symlink_to(outside / "keep")
    os.mkfifo(target / "fifo.py")  # opened for writing without a reader, it would block
    for name in ("lib/x.py", "a.py", "fifo.py"):
        (tmp_path / "p.tar.gz").write_bytes(tar_gz([file(name)]))
        try:
            unpack.unpack(tmp_path / "p.tar.gz", target)
        except OSError:
            pass  # ELOOP: O_NOFOLLOW refused the link; ENXIO: no reader on the FIFO
        else:
            raise AssertionError(f"{name} was written through a link")
    assert tree(outside) == {"keep": ORIGINAL}


_PARTS = st.sampled_from(["a", "b", "lib", "a", "b", "lib", "..", ".", ""])
_NAMES = st.lists(_PARTS, min_size=1, max_size=5).map("/".join)
# Mostly files and folders, so that many archives get as far as writing.
_KINDS = st.sampled_from(
    [*[tarfile.REGTYPE] * 4, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)
_ABSOLUTE = st.sampled_from([False, False, False, True])
# Five levels deep, so that five ".." stay inside the example's own folder.
_TARGET = "in/d1/d2/d3/project"


def test_fuzzed_archives_never_write_outside_nor_leave_a_link(
    tmp_path: Path, figures: Figures, size: Callable[[Any, Any], Any]
) -> None:
    unpacked: list[bool] = []
    escaped: list[str] = []

    @settings(
        max_examples=size(200, 2_000),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(st.tuples(_ABSOLUTE, _NAMES, _KINDS, _NAMES), min_size=1, max_size=6))
    def case(members: list[tuple[bool, str, bytes, str]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as name:
            base = Path(name)
            target, outside = base / _TARGET, base / "outside"
            target.mkdir(parents=True)
            outside.mkdir()
            entries = []
            for absolute, member, kind, aim in members:
                # An absolute name or link aims at `outside`, never at the machine's own files.
                member = f"{outside}/{member}" if absolute else member
                aim = f"{outside}/{aim}" if absolute else aim
                entries.append(
                    file(member) if kind == tarfile.REGTYPE else special(member, kind, aim)
                )
            (base / "p.tar.gz").write_bytes(tar_gz(entries))
            try:
                unpack.unpack(base / "p.tar.gz", target)
                unpacked.append(True)
            except unpack.ArchiveError:
                unpacked.append(False)
            allowed = {"p.tar.gz", "outside", *(str(Path(_TARGET).parents[i]) for i in range(4))}
            escaped.extend(
                path for path in tree(base) if path not in allowed and not path.startswith(_TARGET)
            )
            assert not any(path.is_symlink() for path in target.rglob("*"))
            assert escaped == []

    case()
    figures.record(
        "fuzzed project archives (names with '..' and absolute, links, FIFOs)",
        sent=len(unpacked),
        lost=len(escaped),
        unpacked=sum(unpacked),
    )
