"""The local environment's files: one folder per API under ``$CORTEX_HOME/local/``.

    local/<name>/cortex.yaml   the config file's copy the runtime reads (and re-reads on reload)
    local/<name>/meta.json     what the CLI knows: pid, port, project folder, requested spec hash
    local/<name>/status.json   written by the runtime (``--status-file``): state, spec hash, cause
    local/<name>/api.log       the runtime's output (JSON lines)

Every file the CLI writes is replaced atomically (write to a temporary file, then rename), so a
reader never sees half a file. Malformed files read as missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cortex.contracts import RuntimeStatus

__all__ = ["APIFiles", "LocalState", "Meta", "write_atomic"]


@dataclass(frozen=True)
class Meta:
    """What the CLI recorded about one local API when it last started or updated it."""

    name: str
    kind: str
    pid: int
    port: int
    project_dir: str
    endpoint: str
    spec_hash: str
    created: float
    updated: float
    log_offset: int = 0
    python: str = sys.executable  # the interpreter it runs with (a virtualenv's, with deps)


@dataclass(frozen=True)
class APIFiles:
    """The paths of one API's files."""

    folder: Path

    @property
    def spec(self) -> Path:
        return self.folder / "cortex.yaml"

    @property
    def meta(self) -> Path:
        return self.folder / "meta.json"

    @property
    def status(self) -> Path:
        return self.folder / "status.json"

    @property
    def log(self) -> Path:
        return self.folder / "api.log"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (readers see the old or the new file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class LocalState:
    """The folder of the local environment, ``$CORTEX_HOME/local``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self, name: str) -> APIFiles:
        return APIFiles(self.root / name)

    def names(self) -> list[str]:
        """The APIs that have a readable meta file, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if self.read_meta(p.name) is not None)

    def read_meta(self, name: str) -> Meta | None:
        data = _read_json(self.files(name).meta)
        if not isinstance(data, dict):
            return None
        try:
            return Meta(**data)
        except TypeError:
            return None

    def write_meta(self, meta: Meta) -> None:
        files = self.files(meta.name)
        files.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(files.meta, json.dumps(asdict(meta), indent=2) + "\n")

    def read_status(self, name: str) -> RuntimeStatus | None:
        """The runtime's status file (``--status-file``), or None while there is none."""
        try:
            text = self.files(name).status.read_text(encoding="utf-8")
        except OSError:
            return None
        return RuntimeStatus.from_json(text)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.files(name).folder, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise deploys and deletes: two at once must not pick the same port."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
