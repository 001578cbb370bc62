"""Unpacks a project archive into a folder, refusing anything that could write outside it.

``python -m cortex.unpack ARCHIVE FOLDER`` is the API pod's init container: it turns the
``project.tar.gz`` of the project's ConfigMap into the folder the runtime serves. The archive
comes from whoever may create ConfigMaps in the namespace, so it is read as hostile input.

tarfile's ``filter="data"`` is not relied on: the patch levels of Python 3.11 in images differ in
what it catches (CVE-2025-4517: a long enough path made ``realpath`` stop resolving, and a link
then pointed outside). Instead there is nothing for a path to resolve through:

- only regular files and folders are taken; links (symbolic or hard), devices, FIFOs, sparse
  and other special entries refuse the whole archive, whatever they point at;
- a name must stay below the folder by its text alone: no absolute path, no ``..``, no NUL; a
  name given twice, or a file that another entry treats as a folder, refuses it too;
- at most :data:`~cortex.contracts.PROJECT_MAX_ENTRIES` files and folders and
  :data:`~cortex.contracts.PROJECT_MAX_BYTES` in all, added up from the headers while they are
  read, so a small archive that claims or holds a huge file is refused before anything is
  written, and the count stops reading an archive of endless entries early.

Nothing is written until every header passed. Then each file is created below a folder opened
with ``O_NOFOLLOW`` one component at a time (never a path resolved as a whole), is never
followed if it is a link already, and gets exactly the bytes its header declared: the checked
sum bounds what reaches the disk. A second run over a half-written folder (an init container
restarted) overwrites its own files. Exit code 1 and one ``error:`` line when refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cortex import contracts
from cortex.errors import CortexError

__all__ = ["ArchiveError", "Unpacked", "main", "unpack"]

_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
}
_CHUNK = 1024 * 1024
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO left in the folder must fail, not wait for a reader.
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Entry = tuple[tarfile.TarInfo, tuple[str, ...]]


class ArchiveError(CortexError):
    """The archive holds something a project may not: the message names the entry and why."""


@dataclass(frozen=True)
class Unpacked:
    """What one run wrote: ``files`` files of ``size`` bytes in all."""

    files: int
    size: int


def unpack(archive: Path, folder: Path) -> Unpacked:
    """Unpack the gzipped tar ``archive`` into the existing ``folder``; ArchiveError if refused."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            entries = list(_checked(tar))
            root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                return _write(tar, entries, root)
            finally:
                os.close(root)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"not a readable .tar.gz: {exc}") from None


def _checked(tar: tarfile.TarFile) -> Iterator[Entry]:
    """Each entry with its path components, once its header passed every check."""
    kinds: dict[tuple[str, ...], str] = {}  # path -> "file" | "folder", implied folders too
    size = 0
    for member in tar:  # one header at a time: an endless archive stops at the count
        parts = _parts(member.name)
        is_file = member.type in _FILE_TYPES and not member.issparse()
        if not is_file and member.type != tarfile.DIRTYPE:
            kind = _kind(member)
            raise ArchiveError(f"{member.name!r} is {kind}; a project holds files and folders only")
        if not parts:
            if is_file:
                raise ArchiveError(f"{member.name!r} names no file")
            continue  # "." or "./": the folder itself
        if member.size < 0:
            raise ArchiveError(f"{member.name!r} claims a negative size")
        _claim(kinds, member.name, parts, "file" if is_file else "folder")
        if len(kinds) > contracts.PROJECT_MAX_ENTRIES:
            limit = contracts.PROJECT_MAX_ENTRIES
            raise ArchiveError(f"more than {limit:,} files and folders (the limit)")
        size += member.size if is_file else 0
        if size > contracts.PROJECT_MAX_BYTES:
            raise ArchiveError(
                f"its files add up to more than {_size(contracts.PROJECT_MAX_BYTES)} (the limit) "
                f"at {member.name!r} ({member.size:,} bytes); leave big files out of the project"
            )
        yield member, parts


def _kind(member: tarfile.TarInfo) -> str:
    if member.issparse():  # pax sparse files are of the regular type, with a map
        return "a sparse file"
    return _KINDS.get(member.type, f"an entry of type {member.type.decode(errors='replace')!r}")


def _parts(name: str) -> tuple[str, ...]:
    """The path's components below the folder, by its text alone (nothing is resolved)."""
    if "\x00" in name:
        raise ArchiveError(f"{name!r} holds a NUL character")
    if name.startswith("/"):
        raise ArchiveError(f"{name!r} is an absolute path")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"{name!r} leaves the folder through '..'")
    return parts


def _claim(kinds: dict[tuple[str, ...], str], name: str, parts: tuple[str, ...], kind: str) -> None:
    """Record the entry and the folders its path implies; a name claimed twice refuses (but a
    folder given again), as does a path through a file."""
    for depth in range(1, len(parts)):
        if kinds.setdefault(parts[:depth], "folder") == "file":
            raise ArchiveError(f"{name!r} is inside {'/'.join(parts[:depth])!r}, a file")
    if parts in kinds and not kinds[parts] == kind == "folder":
        raise ArchiveError(f"{name!r} appears twice in the archive")
    kinds[parts] = kind


def _write(tar: tarfile.TarFile, entries: list[Entry], root: int) -> Unpacked:
    files = size = 0
    for member, parts in entries:
        is_file = member.type != tarfile.DIRTYPE
        parent = _open_folders(root, parts[:-1] if is_file else parts)
        try:
            if is_file:
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has its data
                _write_file(source, member, parts[-1], parent)
                files, size = files + 1, size + member.size
        finally:
            if parent != root:
                os.close(parent)
    return Unpacked(files, size)


def _open_folders(root: int, parts: tuple[str, ...]) -> int:
    """The folder ``parts`` below ``root``, made where missing, opened without following links."""
    fd = root
    for part in parts:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
        finally:
            if fd != root:
                os.close(fd)
        fd = child
    return fd


def _write_file(source: IO[bytes], member: tarfile.TarInfo, name: str, parent: int) -> None:
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
    with open(fd, "wb") as out:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a device node left in the folder
            raise ArchiveError(f"{member.name!r}: something other than a file is in its place")
        out.truncate(0)
        os.fchmod(fd, 0o755 if member.mode & 0o100 else 0o644)
        left = member.size
        while left > 0:  # the declared size, never more: the checked sum bounds the disk used
            chunk = source.read(min(_CHUNK, left))
            if not chunk:  # tarfile found the end already; this keeps the loop from spinning
                raise ArchiveError(f"the archive ends inside {member.name!r}")
            out.write(chunk)
            left -= len(chunk)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def main(argv: list[str] | None = None) -> int:
    """``ARCHIVE FOLDER``: unpack, print one line of what was written; exit 1 when refused."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m cortex.unpack ARCHIVE FOLDER", file=sys.stderr)
        return 2
    archive, folder = Path(args[0]), Path(args[1])
    try:
        done = unpack(archive, folder)
    except (ArchiveError, OSError) as exc:
        print(f"error: cannot unpack the project archive {archive}: {exc}", file=sys.stderr)
        return 1
    files = f"{done.files} file" + ("" if done.files == 1 else "s")
    print(f"unpacked {files} ({_size(done.size)}) into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
