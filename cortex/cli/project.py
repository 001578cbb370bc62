"""Packs a project folder (the folder of ``cortex.yaml``) into one reproducible gzipped tar.

What goes in: every file under the folder except dotfiles and dot-folders, ``__pycache__``,
compiled Python, virtualenvs (any folder holding a ``pyvenv.cfg``), ``node_modules``, and what
``.cortexignore`` excludes (gitignore syntax, relative to the folder). A symlink that stays inside
the folder is kept as a link; one that points outside is an error, because the pod would not
have its target.

The archive is byte-for-byte the same for the same files (sorted, zero timestamps and owners,
gzip without a timestamp), so its SHA-256 is a hash of the project's content: the cluster rolls
pods when it changes and leaves them when it does not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from cortex import errors

__all__ = ["IGNORE_FILE", "MAX_ARCHIVE_BYTES", "Archive", "check_size", "pack"]

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
    """The project folder as a reproducible gzipped tar; CortexError on a symlink out of it."""
    folder = folder.resolve()
    ignored = _ignore_spec(folder)
    raw = io.BytesIO()
    files: list[tuple[str, int]] = []
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(folder, folder, ignored):
            relative = path.relative_to(folder).as_posix()
            info = tarfile.TarInfo(relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, _link(folder, path), 0o777
                tar.addfile(info)
                continue
            content = path.read_bytes()
            info.size = len(content)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(content))
            files.append((relative, info.size))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    data = compressed.getvalue()
    return Archive(data, hashlib.sha256(data).hexdigest(), tuple(files))


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


def _walk(root: Path, folder: Path, ignored: pathspec.GitIgnoreSpec) -> Iterator[Path]:
    """The files and links to pack under ``folder``, sorted, skipping what is never packed."""
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        relative = path.relative_to(root).as_posix()
        if path.name.startswith(".") or path.name.endswith(_SKIPPED_SUFFIXES):
            continue
        is_folder = path.is_dir() and not path.is_symlink()
        if ignored.match_file(relative + "/" if is_folder else relative):
            continue
        if not is_folder:
            yield path
        elif path.name not in _SKIPPED_FOLDERS and not (path / "pyvenv.cfg").exists():
            yield from _walk(root, path, ignored)


def _link(root: Path, path: Path) -> str:
    """The link's target relative to its folder; CortexError when it leaves the project."""
    target = path.resolve()
    if not target.is_relative_to(root):
        raise errors.CortexError(
            f"{path.relative_to(root)} in the project folder is a symlink to {target}, outside "
            f"the folder, so the API's pods would not have it; copy it in, or list it in "
            f"{IGNORE_FILE}"
        )
    return os.path.relpath(target, path.parent)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"
