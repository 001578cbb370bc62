"""The ``python_client`` of a multi-model predictor: models by name and version over the cache.

``get_model(name=None, version="latest")`` returns a loaded model; inside a request it is
pinned until the response is sent (an eviction can never unload a model a request still uses),
and ``name=None`` means the model the request chose with ``?model=NAME`` (and ``&version=N``),
or the only one. ``with client.model(name, version) as m:`` pins for the block alone.

Versions come from the sources' listings (:mod:`cortex.runtime.modelstore`); ``poll_once``
lists them again: a new version of a model in memory is loaded first (on the poller's thread,
requests keep the old one meanwhile) and ``latest`` then points at it in one assignment; a
version gone from its source takes no new request and is unloaded when its last one finishes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import unquote_plus

from cortex.runtime import modelcache, modelstore
from cortex.runtime.modelcache import Entry, Key, ModelCache
from cortex.spec import Models

log = logging.getLogger("cortex.runtime")

LATEST = "latest"


class ModelRequestError(Exception):
    """A request for a model that cannot be answered: 400, or 404 (:class:`ModelNotFound`)."""

    status = 400

    def __init__(self, message: str, models: list[str]) -> None:
        super().__init__(message)
        self.models = models


class ModelNotFound(ModelRequestError):
    status = 404


@dataclass
class Request:
    """The model one request chose (``?model=``, ``&version=``) and the leases it holds."""

    name: str | None
    version: str
    leases: list[Entry] = field(default_factory=list)
    closed: bool = False
    token: Token[Request | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, entry: Entry) -> bool:
        """Keep ``entry`` pinned until the request ends; False once it has (a predict thread
        still loading after its request timed out must not pin a model forever)."""
        with self._lock:
            if not self.closed:
                self.leases.append(entry)
            return not self.closed

    def close(self) -> list[Entry]:
        """End the request: the leases to release."""
        with self._lock:
            self.closed, leases, self.leases = True, self.leases, []
            return leases


class Observer(modelcache.Observer, Protocol):
    """What the client tells its metrics: the cache's events and the disk tier's evictions."""

    def evicted_disk(self, name: str, version: int) -> None: ...


_request: ContextVar[Request | None] = ContextVar("cortex_model_request", default=None)


class ModelClient:
    """Models by name and version for one predictor instance (bound with :meth:`bind`)."""

    def __init__(
        self, spec: Models, project_dir: Path, cache_dir: Path, observer: Observer
    ) -> None:
        """Lists the sources once (a protocol whose package is missing raises
        ``PredictorError``); downloads go under ``cache_dir``."""
        self.spec = spec
        self.project_dir = project_dir
        self._lock = threading.Lock()
        self._polling = threading.Lock()  # one listing at a time: the poller's, or a test's
        self._sources: dict[str, modelstore.Source] = {}
        self._versions: dict[str, tuple[int, ...]] = {}
        self._latest: dict[str, int] = {}
        self._sizes: dict[Key, int] = {}
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._stop = threading.Event()
        # Where a request's leases are unloaded from when releasing them evicts: the handler
        # releases them on the event loop (the process sets its predict threads here).
        self.unload_later: Callable[[Callable[[], None]], None] | None = None
        self.cache = ModelCache(
            _Loader(self),
            max_models=spec.cache_size,
            max_bytes=spec.max_byte_count,
            observer=observer,
        )
        self.disk = modelstore.DiskCache(
            cache_dir, spec.disk_cache_size, self._in_use, observer.evicted_disk
        )
        self.poll_once()

    def bind(self, instance: Any) -> None:
        """The predictor whose ``load_model`` (and optional ``unload_model``, ``model_size``)
        the cache calls; bound before its ``__init__`` runs, so ``__init__`` may load."""
        for hook in ("load_model", "unload_model", "model_size"):
            method = getattr(instance, hook, None)
            if method is not None:
                self._hooks[hook] = method

    def get_model(self, name: str | None = None, version: str | int = LATEST) -> Any:
        """The loaded model; in a request, pinned until the response is sent."""
        request = _request.get()
        entry = self._acquire(name, version, request)
        if request is not None and request.hold(entry):
            return entry.model
        model = entry.model
        self.cache.release(entry)
        return model

    @contextmanager
    def model(self, name: str | None = None, version: str | int = LATEST) -> Iterator[Any]:
        """The loaded model, pinned inside the block."""
        entry = self._acquire(name, version, _request.get())
        try:
            yield entry.model
        finally:
            self.cache.release(entry)

    def _acquire(self, name: str | None, version: str | int, request: Request | None) -> Entry:
        """Resolve and pin at once when the model is in memory: a swap or a removal that runs
        meanwhile then waits for this lease instead of the request loading a retired version."""
        with self._lock:
            key = self._key(name, version, request)
            entry = self.cache.try_acquire(key)
        return entry if entry is not None else self.cache.acquire(key)

    def usage(self) -> dict[str, tuple[int, int]]:
        """Per tier (``memory``, ``disk``): the models held and their bytes."""
        stats = self.cache.stats()
        return {"memory": (len(stats.entries), stats.bytes), "disk": self.disk.usage()}

    def budgets(self) -> dict[str, Any]:
        """The cache's budgets and what it holds against them."""
        usage, spec = self.usage(), self.spec
        return {
            "cache_size": spec.cache_size,
            "max_bytes": spec.max_byte_count,
            "disk_cache_size": spec.disk_cache_size,
            "memory": {"models": usage["memory"][0], "bytes": usage["memory"][1]},
            "disk": {"models": usage["disk"][0], "bytes": usage["disk"][1]},
        }

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def begin(self, query_string: bytes) -> Request:
        """The model a request chose, checked before its predictor runs (a
        :class:`ModelRequestError` if there is no such model); pair with :meth:`end`."""
        chosen = Request(*_choice(query_string))
        if chosen.name is not None:
            with self._lock:
                self._key(chosen.name, chosen.version, None)
        chosen.token = _request.set(chosen)
        return chosen

    def end(self, chosen: Request) -> None:
        """After the response: the request's leases are released."""
        if chosen.token is not None:
            _request.reset(chosen.token)
        for entry in chosen.close():
            self.cache.release(entry, self.unload_later)

    def describe(self) -> list[dict[str, Any]]:
        """Each model: its versions, what ``latest`` is and which versions are in memory."""
        loaded: dict[str, list[int]] = {}
        for key, _, _ in self.cache.stats().entries:
            name, version = cast(tuple[str, int], key)
            loaded.setdefault(name, []).append(version)
        with self._lock:
            versions, latest = dict(self._versions), dict(self._latest)
        return [
            {
                "name": name,
                "versions": list(versions[name]),
                "latest": latest.get(name),
                "loaded": sorted(loaded.get(name, [])),
            }
            for name in sorted(versions)
        ]

    def poll_once(self) -> None:
        """List the sources again and apply what changed (see the module docstring)."""
        with self._polling:
            self._apply(self._list())

    def _list(self) -> dict[str, tuple[modelstore.Source, tuple[int, ...]]]:
        sources = modelstore.list_models(self.spec, self.project_dir)
        found = {name: (source, source.versions()) for name, source in sources.items()}
        return {name: (source, vs) for name, (source, vs) in found.items() if vs}

    def _apply(self, found: dict[str, tuple[modelstore.Source, tuple[int, ...]]]) -> None:
        listing = {name: versions for name, (_, versions) in found.items()}
        with self._lock:
            before, latest = self._versions, dict(self._latest)
            self._sources = {name: source for name, (source, _) in found.items()}
            self._versions = listing
            moves = {name: vs[-1] for name, vs in listing.items() if latest.get(name) != vs[-1]}
            for name, new in moves.items():
                old = latest.get(name)
                if old is None or old not in listing[name] or (name, old) not in self.cache:
                    self._latest[name] = new  # nothing in memory to keep serving meanwhile
            for name in set(self._latest) - set(listing):
                del self._latest[name]
        for name, new in moves.items():
            if self._latest.get(name) != new:
                self._swap(name, new)
        for name, versions in before.items():
            for version in set(versions) - set(listing.get(name, ())):
                self.cache.remove((name, version), "removed")
                self.disk.forget(name, version)

    def _swap(self, name: str, new: int) -> None:
        """Load ``new`` while the old latest keeps serving, then point ``latest`` at it."""
        try:
            self.cache.get((name, new))
        except Exception:
            log.exception("model %s version %d failed to load; latest stays", name, new)
            return
        with self._lock:
            old, self._latest[name] = self._latest.get(name), new
        if old is not None:
            self.cache.remove((name, old), "replaced")

    def start(self) -> None:
        """Poll every ``poll_interval`` on a thread of its own (none when it is 0)."""
        if self.spec.poll_interval > 0:
            threading.Thread(target=self._poll, name="cortex-model-poller", daemon=True).start()

    def close(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.spec.poll_interval):
            try:
                self.poll_once()
            except Exception:
                log.exception("listing the models' sources failed; trying again later")

    def _key(self, name: str | None, version: str | int, request: Request | None) -> Key:
        """The (name, version) asked for, or why there is none (``self._lock`` held)."""
        if name is None and request is not None and request.name is not None:
            name = request.name
            version = request.version if version == LATEST else version
        if name is None:
            if len(self._versions) != 1:
                known = sorted(self._versions)
                raise ModelRequestError(
                    f"choose a model with ?model=NAME; models: {_list(known)}", known
                )
            name = next(iter(self._versions))
        versions = self._versions.get(name)
        if versions is None:
            known = sorted(self._versions)
            raise ModelNotFound(f"unknown model {name[:64]!r}; models: {_list(known)}", known)
        if version == LATEST:
            return (name, self._latest[name])
        number = _version(version, sorted(self._versions))
        if number not in versions:
            raise ModelNotFound(
                f"model {name!r} has no version {number}; versions: "
                f"{', '.join(map(str, versions))}",
                sorted(self._versions),
            )
        return (name, number)

    def _in_use(self, name: str, version: int) -> bool:
        return self.cache.busy((name, version))

    def _source(self, name: str) -> modelstore.Source:
        with self._lock:
            return self._sources[name]


def _choice(query_string: bytes) -> tuple[str | None, str]:
    """``model`` and ``version`` of a query string (a request without ``model=`` pays one
    search); the last of a repeated parameter wins, as with a dict of the pairs."""
    name, version = None, LATEST
    if b"model=" not in query_string:
        return name, version
    for pair in query_string.decode("latin-1").split("&"):
        key, _, value = pair.partition("=")
        if key == "model":
            name = unquote_plus(value)
        elif key == "version":
            version = unquote_plus(value)
    return name, version


def _version(version: str | int, known: list[str]) -> int:
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str) and version.isdigit():
        return int(version)
    raise ModelRequestError(f"version {str(version)[:64]!r} must be an integer or 'latest'", known)


def _list(names: list[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "") or "none"


class _Loader:
    """The cache's loader: a version downloaded if remote, then the predictor's hooks."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client

    def estimate(self, key: Key) -> int:
        name, version = cast(tuple[str, int], key)
        known = self.client._sizes.get(key)
        if known is not None:
            return known
        try:
            return self.client._source(name).size(version)
        except (OSError, KeyError):
            return 0

    def load(self, key: Key) -> tuple[Any, int]:
        name, version = cast(tuple[str, int], key)
        hooks = self.client._hooks
        if "load_model" not in hooks:
            raise RuntimeError("the predictor is not bound to its model client yet")
        path = self.client.disk.fetch(name, version, self.client._source(name))
        model = hooks["load_model"](str(path))
        sizer = hooks.get("model_size")
        size = int(sizer(model, str(path))) if sizer else modelstore.bytes_under(path)
        self.client._sizes[key] = size
        return model, size

    def unload(self, key: Key, model: Any) -> None:
        hook = self.client._hooks.get("unload_model")
        if hook is not None:
            hook(model)
