"""Packs a project folder (the folder of ``cortex.yaml``) into one reproducible gzipped tar.

What goes in: every file under the folder except dotfiles and dot-folders, ``__pycache__``,
compiled Python, virtualenvs (any folder holding a ``pyvenv.cfg``), ``node_modules``, and what
``.cortexignore`` excludes (gitignore syntax, relative to the folder). The archive holds regular
files only, because that is all the pod's unpack step takes (:mod:`cortex.unpack`): a
symlink to a file or folder inside the project goes in as a copy of what it points at; one that
points outside (the pod would not have its target), dangles or loops is an error, and so is a
FIFO, socket or device file. So is a project the pod would refuse to unpack: more than
``PROJECT_MAX_BYTES`` (1 GiB) of files or ``PROJECT_MAX_ENTRIES`` files and folders; the sizes
are added up before a byte is read.

The archive is byte-for-byte the same for the same files (sorted, zero timestamps and owners,
gzip without a timestamp), so its SHA-256 is a hash of the project's content: the cluster rolls
pods when it changes and leaves them when it does not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from cortex import contracts, errors

__all__ = ["IGNORE_FILE", "MAX_ARCHIVE_BYTES", "Archive", "check_size", "members", "pack"]

IGNORE_FILE = ".cortexignore"
# A ConfigMap holds at most 1 MiB; binaryData is base64 in the stored object (4/3 the size),
# and the object's metadata needs some room too.
MAX_ARCHIVE_BYTES = (1024 * 1024 - 16 * 1024) * 3 // 4
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Archive:
    """A packed project: the ``.tar.gz`` bytes, their SHA-256 and the files (path, size)."""

    data: bytes
    sha256: str
    files: tuple[tuple[str, int], ...]

    @property
    def size(self) -> int:
        return len(self.data)


def pack(folder: Path) -> Archive:
    """The project folder as a reproducible gzipped tar; CortexError on what a pod cannot take."""
    raw = io.BytesIO()
    files: list[tuple[str, int]] = []
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative, path in members(folder):
            content = path.read_bytes()
            info = tarfile.TarInfo(relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.size = len(content)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(content))
            files.append((relative, info.size))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    data = compressed.getvalue()
    return Archive(data, hashlib.sha256(data).hexdigest(), tuple(files))


def members(folder: Path) -> list[tuple[str, Path]]:
    """The files :func:`pack` takes: (path in the archive, path on disk), sorted; CortexError on
    what a pod cannot take. ``cortex serve --reload`` watches these."""
    folder = folder.resolve()
    walk = _walk(folder, folder, _ignore_spec(folder), frozenset({folder}))
    found = [(path.relative_to(folder).as_posix(), path) for path in walk]
    _check_unpacked(folder, found)
    return found


def check_size(archive: Archive, folder: Path, limit: int = MAX_ARCHIVE_BYTES) -> None:
    """CortexError naming the biggest files when the archive does not fit in a ConfigMap."""
    if archive.size <= limit:
        return
    biggest = sorted(archive.files, key=lambda item: (-item[1], item[0]))[:3]
    names = ", ".join(f"{path} ({_size(size)})" for path, size in biggest)
    raise errors.CortexError(
        f"project folder {folder} is {_size(archive.size)} packed, more than the "
        f"{_size(limit)} a ConfigMap holds; biggest files: {names}. List what the predictor "
        f"does not need in {IGNORE_FILE}, or build an image with the code and set predictor.image"
    )


def _ignore_spec(folder: Path) -> pathspec.GitIgnoreSpec:
    try:
        lines = (folder / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _walk(
    root: Path, folder: Path, ignored: pathspec.GitIgnoreSpec, above: frozenset[Path]
) -> Iterator[Path]:
    """The files to pack under ``folder``, sorted, links followed inside the project; ``above``
    holds the real folders being walked (``folder``'s too), so a link back into one is caught."""
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        relative = path.relative_to(root).as_posix()
        if path.name.startswith(".") or path.name.endswith(_SKIPPED_SUFFIXES):
            continue
        target = _target(root, path) if path.is_symlink() else path
        is_folder = target.is_dir()
        if ignored.match_file(relative + "/" if is_folder else relative):
            continue
        if not is_folder:
            _check_file(root, path, target)
            yield path
        elif path.name not in _SKIPPED_FOLDERS and not (path / "pyvenv.cfg").exists():
            real = target.resolve()
            if real in above:
                raise errors.CortexError(
                    f"{path.relative_to(root)} in the project folder is a symlink to {real}, a "
                    f"folder it is inside of, so packing would never end; remove it or list it "
                    f"in {IGNORE_FILE}"
                )
            yield from _walk(root, path, ignored, above | {real})


def _target(root: Path, path: Path) -> Path:
    """Where the link ``path`` leads; CortexError when that is outside the project or nowhere."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        what = f"a symlink to {os.readlink(path)}, which does not exist"
        raise _refused(root, path, what) from None
    except (OSError, RuntimeError):  # RuntimeError: a loop of links (Python 3.11)
        raise _refused(root, path, "a symlink that loops") from None
    if not target.is_relative_to(root):
        raise _refused(root, path, f"a symlink to {target}, outside the folder")
    return target


def _check_file(root: Path, path: Path, target: Path) -> None:
    mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else None
        raise _refused(root, path, kind or "a device file")


def _refused(root: Path, path: Path, what: str) -> errors.CortexError:
    return errors.CortexError(
        f"{path.relative_to(root)} in the project folder is {what}, so the API's pods would not "
        f"have it (they take files and folders only); copy what it holds in, or list it in "
        f"{IGNORE_FILE}"
    )


def _check_unpacked(folder: Path, members: list[tuple[str, Path]]) -> None:
    """CortexError when the pod's unpack step would refuse the project: too big or too many."""
    total = sum(path.stat().st_size for _, path in members)
    if total > contracts.PROJECT_MAX_BYTES:
        raise errors.CortexError(
            f"project folder {folder} holds {_size(total)} of files, more than the "
            f"{_size(contracts.PROJECT_MAX_BYTES)} an API's pods unpack; list what the "
            f"predictor does not need in {IGNORE_FILE}, or build an image with it and set "
            "predictor.image"
        )
    folders = {parent for relative, _ in members for parent in Path(relative).parents}
    entries = len(members) + len(folders - {Path(".")})
    if entries > contracts.PROJECT_MAX_ENTRIES:
        raise errors.CortexError(
            f"project folder {folder} holds {entries:,} files and folders, more than the "
            f"{contracts.PROJECT_MAX_ENTRIES:,} an API's pods unpack; list what the predictor "
            f"does not need in {IGNORE_FILE}"
        )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    if count < 1024**3:
        return f"{count / 1024 / 1024:.1f} MiB"
    return f"{count / 1024**3:.1f} GiB"
