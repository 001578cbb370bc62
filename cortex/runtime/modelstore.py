"""Where models come from: sources, their versions, and the local disk copies of remote ones.

A source is an fsspec URL (``s3://``, ``gs://``, ``hf://``... when its package is installed;
``memory://`` in tests) or a local path (``file://`` or bare). A model's folder is the model
itself (version 1) or holds integer folders, its versions; anything else in it (``3.partial``,
``tmp``) is not a version, so a writer can prepare a version under another name and rename it.

A local model is loaded where it lies. A remote one is downloaded to
``<cache>/<name>/<version>.partial`` and renamed to ``<cache>/<name>/<version>`` once complete:
a crash never leaves a half model that looks complete, and leftovers are removed at start. A
lock file per version keeps two processes sharing the folder (a reload's old and new workers)
from downloading the same version at once, or removing each other's download.
At most ``disk_cache_size`` downloads stay on disk, least recently used first out, never one
that is in memory or being loaded (the caller says which through ``in_use``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cortex.errors import PredictorError
from cortex.spec import DEFAULT_MODEL, MODEL_NAME_PATTERN, Models, is_url

log = logging.getLogger("cortex.runtime")

_NAME = re.compile(MODEL_NAME_PATTERN)
PARTIAL = ".partial"
LOCK = ".lock"  # held while a version downloads: one process of a replica at a time
FLAT_VERSION = 1


@dataclass(frozen=True)
class Source:
    """One model's folder on some file system."""

    fs: Any  # an fsspec AbstractFileSystem
    root: str  # without the protocol
    url: str  # as the spec says it

    @property
    def local(self) -> bool:
        protocols = self.fs.protocol
        return "file" in (protocols if isinstance(protocols, tuple) else (protocols,))

    def child(self, name: str) -> Source:
        return Source(self.fs, f"{self.root.rstrip('/')}/{name}", f"{self.url.rstrip('/')}/{name}")

    def versions(self) -> tuple[int, ...]:
        """The complete versions, ascending; a folder without version folders is version 1."""
        try:
            listing = self.fs.ls(self.root, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        folders = [_base(item["name"]) for item in listing if item["type"] == "directory"]
        versions = sorted(int(name) for name in folders if name.isdigit())
        if versions:
            return tuple(versions)
        return (FLAT_VERSION,) if listing else ()

    def version_path(self, version: int) -> str:
        """Where version ``version`` lies (the root itself for a flat model)."""
        numbered = f"{self.root.rstrip('/')}/{version}"
        return numbered if self.fs.isdir(numbered) else self.root

    def size(self, version: int) -> int:
        """The bytes of one version's files."""
        return int(self.fs.du(self.version_path(version), total=True))


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def open_source(url: str, project_dir: Path, field: str) -> Source:
    """The source of ``url`` (relative paths are inside the project); a protocol without its
    package installed is a ``PredictorError`` that says which package."""
    from fsspec.core import url_to_fs

    if not is_url(url) and not Path(url).is_absolute():
        url = str(project_dir / url)
    try:
        fs, root = url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise PredictorError(f"{field} {url!r} cannot be read: {exc}") from None
    return Source(fs, root, url)


def list_models(spec: Models, project_dir: Path) -> dict[str, Source]:
    """Every model ``predictor.models`` names, by name; a ``dir`` is listed now."""
    if spec.path is not None:
        return {DEFAULT_MODEL: open_source(spec.path, project_dir, "predictor.models.path")}
    if spec.dir is None:
        return {
            model.name: open_source(model.path, project_dir, f"predictor.models.paths {model.name}")
            for model in spec.paths or ()
        }
    parent = open_source(spec.dir, project_dir, "predictor.models.dir")
    try:
        listing = parent.fs.ls(parent.root, detail=True)
    except FileNotFoundError:
        return {}
    found = {}
    for item in listing:
        name = _base(item["name"])
        if item["type"] != "directory":
            continue
        if _NAME.fullmatch(name):
            found[name] = parent.child(name)
        else:
            log.warning("predictor.models.dir: folder %r is not a model name; skipped", name)
    return found


class DiskCache:
    """Local copies of remote model versions, within ``max_versions``."""

    def __init__(
        self,
        root: Path,
        max_versions: int | None,
        in_use: Callable[[str, int], bool],
        on_evict: Callable[[str, int], None] = lambda name, version: None,
    ) -> None:
        self.root = root
        self.max_versions = max_versions
        self.in_use = in_use
        self.on_evict = on_evict
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], int] = OrderedDict()  # -> bytes
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(f"*/*{PARTIAL}"):
            with _exclusive(leftover.with_suffix(LOCK), wait=False) as mine:
                if mine:  # else another process (a reload's sibling) is downloading it
                    shutil.rmtree(leftover, ignore_errors=True)
        for folder in sorted(root.glob("*/[0-9]*"), key=lambda p: p.stat().st_mtime):
            if folder.name.isdigit():
                self._kept[(folder.parent.name, int(folder.name))] = bytes_under(folder)

    def fetch(self, name: str, version: int, source: Source) -> Path:
        """A local folder holding the version: the source itself when local, else a copy."""
        if source.local:
            return Path(source.version_path(version))
        target = self.root / name / str(version)
        with self._lock:
            if (name, version) in self._kept and target.is_dir():
                self._kept.move_to_end((name, version))
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.with_name(f"{version}{LOCK}"), wait=True):
            if not target.is_dir():  # else another process of the replica just fetched it
                partial = target.with_name(f"{version}{PARTIAL}")
                shutil.rmtree(partial, ignore_errors=True)
                _download(source, source.version_path(version), partial)
                os.rename(partial, target)
        with self._lock:
            self._kept[(name, version)] = bytes_under(target)
            victims = self._over_budget()
        for victim in victims:
            shutil.rmtree(self.root / victim[0] / str(victim[1]), ignore_errors=True)
            self.on_evict(*victim)
        return target

    def forget(self, name: str, version: int) -> None:
        """Delete the copy of a version gone from its source."""
        with self._lock:
            kept = self._kept.pop((name, version), None)
        if kept is not None:
            shutil.rmtree(self.root / name / str(version), ignore_errors=True)

    def usage(self) -> tuple[int, int]:
        """(versions, bytes) on disk."""
        with self._lock:
            return len(self._kept), sum(self._kept.values())

    def _over_budget(self) -> list[tuple[str, int]]:
        victims: list[tuple[str, int]] = []
        if self.max_versions is None:
            return victims
        for key in list(self._kept):
            if len(self._kept) <= self.max_versions:
                break
            if not self.in_use(*key):
                del self._kept[key]
                victims.append(key)
        return victims


@contextmanager
def _exclusive(path: Path, wait: bool) -> Iterator[bool]:
    """An advisory lock on ``path`` between the processes sharing the folder (the old and new
    workers of a reload); yields whether it is held (always, when waiting)."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(source: Source, remote: str, local: Path) -> None:
    """Every file under ``remote`` into ``local``, one by one (fsspec's recursive ``get``
    nests folders differently from one file system to another)."""
    prefix = remote.rstrip("/") + "/"
    files = source.fs.find(remote)
    if not files:
        raise FileNotFoundError(f"{source.url}: no files under {remote}")
    for file in files:
        relative = file[len(prefix) :] if file.startswith(prefix) else _base(file)
        destination = local / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.fs.get_file(file, str(destination))


def bytes_under(folder: Path) -> int:
    """The bytes of the files under ``folder`` (a model's size when it does not say)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
