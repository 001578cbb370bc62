"""The local environment: each API is a background ``python -m cortex.runtime`` process.

Deploying starts one runtime per API (detached, output to its ``api.log``) on
``networking.local_port`` or the next free port from 8888; the CLI binds that port and hands the
listening socket to the runtime, so no other program can take it in between. Redeploying a
changed spec rewrites the API's spec copy and sends SIGHUP: the runtime loads the new version
next to the old one and switches with no downtime (a new port or project folder needs a stop
and a start). Everything ``cortex get`` shows is read from the runtime: its status file,
``/readyz`` and ``/metrics``; a pid counts only while that process still runs the runtime with
this API's spec copy.

"Changed" means what it means on a cluster: the project folder is packed by the same rules
(:mod:`cortex.cli.project`) and the archive's SHA-256 goes into the spec as ``project.sha256``,
so an edited ``predictor.py`` changes the spec hash like an edited ``cortex.yaml``. The spec copy
the runtime reads is that one API, validated and written out as JSON (a YAML document), so the
hash the runtime reports is the one the CLI asked for. ``force`` reloads an unchanged API too.

``predictor.env`` reaches the predictor as in a pod (the runtime's workers set it, so a reload
with new values applies them). ``predictor.env_refs`` (values read from a Secret or ConfigMap
on a cluster) come from the CLI's own environment here: the runtime inherits it, so
``HF_TOKEN=... cortex deploy`` hands the token to the predictor. A reference that is not
optional and not set is an error naming the variable, before anything starts. So does
``networking.auth``'s token: ``cortex predict`` sends it from the same environment.

``predictor.dependencies`` (:mod:`cortex.cli.deps`): the runtime runs with the Python of its
requirements' virtualenv, built during the deploy if new (under the state lock, so a second
deploy of the same file waits for it rather than building it twice). A reload keeps the
process's interpreter, so a deploy whose requirements changed restarts the API instead.
``dependencies.sh`` runs before each start. ``--no-deps`` runs the CLI's own Python and neither.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click
import httpx

from cortex import errors, samples
from cortex.cli import (
    deps,
    environment,
    format,
    gpus,
    logfile,
    posting,
    probe,
    processes,
    project,
    state,
)
from cortex.contracts import APIState, RuntimeArgs, RuntimeState, RuntimeStatus
from cortex.spec import RealtimeAPI, parse_specs, spec_hash

__all__ = ["LocalEnvironment"]

HOST = "127.0.0.1"
# Ready with the old spec: the reload has not begun yet.
_PENDING = {RuntimeState.READY: APIState.UPDATING.value}
# A runtime that serves, or sleeps with its port held (min_replicas 0): the next request wakes it.
_SERVING = (RuntimeState.READY, RuntimeState.ASLEEP)
STOP_GRACE = 40.0  # the runtime drains for up to 30 s (--graceful-timeout) before exiting


@dataclass(frozen=True)
class _Batch:
    """One deploy: the project folder and its archive's SHA-256, the ports its APIs ask for,
    whether unchanged APIs reload too, and whether their dependencies are installed
    (``--no-deps``: no)."""

    project: Path
    sha256: str
    confirm: Callable[[str], bool]
    reserved: frozenset[int]
    force: bool
    deps: bool


class LocalEnvironment:
    """APIs as processes on this machine; their files live in ``local_state``."""

    waits_by_default = True  # a local deploy is quick to wait for, and nothing else tells
    poll_seconds = 0.2  # a rollout asks local files and one HTTP call

    def __init__(
        self, name: str, local_state: state.LocalState, shown: TextIO = sys.stderr
    ) -> None:
        self.name = name
        self.state = local_state
        self.deps_root = local_state.root.parent / "deps"
        self.shown = shown  # where a virtualenv's build shows its progress

    # -- deploy -------------------------------------------------------------------------------

    def deploy(
        self,
        apis: Sequence[RealtimeAPI],
        config: Path,
        confirm: Callable[[str], bool],
        force: bool = False,
        deps: bool = True,
    ) -> list[environment.Deployment]:
        folder = config.resolve().parent
        ports = frozenset(a.networking.local_port for a in apis if a.networking.local_port)
        for api in apis:
            _check_env_refs(api, os.environ)
        for line in gpus.missing_gpu_warnings(apis, os.environ):
            click.echo(f"warning: {line}", err=True)
        batch = _Batch(folder, project.pack(folder).sha256, confirm, ports, force, deps)
        with self.state.lock():
            for api in apis:
                self._clear_leftovers(api.name)
                self._check_port(api)
            return [self._deploy_one(_with_project(api, batch.sha256), batch) for api in apis]

    def _clear_leftovers(self, name: str) -> None:
        """Kill what is left of a runtime whose master died (workers holding the port)."""
        meta = self.state.read_meta(name)
        if meta is not None and not self._alive(meta):
            self._stop(meta)

    def _check_port(self, api: RealtimeAPI) -> None:
        port = api.networking.local_port
        if port is None:
            return
        label = f"api '{api.name}': networking.local_port {port}"
        for other in self._metas(exclude=api.name):
            if other.port == port:
                raise errors.ClusterError(
                    f"{label} is already used by local api '{other.name}'; choose another port "
                    f"or delete it (`cortex delete {other.name}`)"
                )
        meta = self.state.read_meta(api.name)
        if meta is not None and meta.port == port and self._alive(meta):
            return
        if processes.port_in_use(port):
            raise _port_taken(api, port)

    def _deploy_one(self, api: RealtimeAPI, batch: _Batch) -> environment.Deployment:
        meta = self.state.read_meta(api.name)
        folder = batch.project
        python = self._python(api, batch)
        if meta is None:
            return self._start(api, batch, python, None, "create")
        if meta.project_dir != str(folder) and not batch.confirm(
            f"api '{api.name}' is deployed from {meta.project_dir}; replace it with the one "
            f"from {folder}?"
        ):
            raise errors.CortexError(
                f"api '{api.name}' is already deployed from {meta.project_dir}; "
                "deploy with -y to replace it"
            )
        if not self._alive(meta):
            return self._start(api, batch, python, meta, "update")
        port = api.networking.local_port
        moved = port not in (None, meta.port) or meta.project_dir != str(folder)
        if moved or meta.python != python:  # a reload keeps the interpreter: restart
            self._stop(meta)
            return self._start(api, batch, python, meta, "update")
        return self._update(api, batch, python, meta)

    def _python(self, api: RealtimeAPI, batch: _Batch) -> str:
        """The interpreter of ``api``'s runtime: its requirements' virtualenv (built now if
        new), or the CLI's own with ``--no-deps`` or without a requirements file."""
        if not batch.deps:
            return sys.executable
        return deps.python_for(api, batch.project, self.deps_root, self.shown)

    def _update(
        self, api: RealtimeAPI, batch: _Batch, python: str, meta: state.Meta
    ) -> environment.Deployment:
        """The API runs: leave it, wait for the update under way, or reload a new spec (or the
        same one, forced)."""
        wanted = spec_hash(api)
        status = self._status_file(meta)
        if status is None or status.state in (RuntimeState.LOADING, RuntimeState.RELOADING):
            if meta.spec_hash == wanted:
                return self._deployment(api, meta, "in-progress", status)
            raise errors.CortexError(
                f"api '{api.name}' is updating; wait until it is live "
                f"(`cortex get {api.name} -w`), then deploy again"
            )
        if status.state not in _SERVING:  # draining or failed: on its way out
            self._stop(meta)
            return self._start(api, batch, python, meta, "update")
        if status.spec_hash == wanted and not batch.force:
            if meta.spec_hash != wanted:  # back to what runs, after a failed update
                meta = dataclasses.replace(meta, spec_hash=wanted)
                self.state.write_meta(meta)
            return self._deployment(api, meta, "unchanged", status)
        files = self.state.files(api.name)
        meta = dataclasses.replace(
            meta, spec_hash=wanted, updated=time.time(), log_offset=_size(files.log)
        )
        state.write_atomic(files.spec, _spec_copy(api))
        self.state.write_meta(meta)
        os.kill(meta.pid, signal.SIGHUP)
        return self._deployment(api, meta, "update", status, reloaded=True)

    def _start(
        self,
        api: RealtimeAPI,
        batch: _Batch,
        python: str,
        previous: state.Meta | None,
        action: environment.Action,
    ) -> environment.Deployment:
        files = self.state.files(api.name)
        files.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if batch.deps:
            deps.run_script(api, batch.project, files.log, env)
        with self._listen(api, previous, batch.reserved) as sock:
            port = int(sock.getsockname()[1])
            state.write_atomic(files.spec, _spec_copy(api))
            files.status.unlink(missing_ok=True)
            offset = _size(files.log)
            pid = _launch(api.name, files, batch.project, sock, python, env)
        now = time.time()
        meta = state.Meta(
            name=api.name,
            kind=api.kind,
            pid=pid,
            port=port,
            project_dir=str(batch.project),
            endpoint=api.endpoint,
            spec_hash=spec_hash(api),
            created=previous.created if previous else now,
            updated=now,
            log_offset=offset,
            python=python,
        )
        self.state.write_meta(meta)
        return self._deployment(api, meta, action, None)

    def _deployment(
        self,
        api: RealtimeAPI,
        meta: state.Meta,
        action: environment.Action,
        before: RuntimeStatus | None,
        reloaded: bool = False,
    ) -> environment.Deployment:
        """``reloaded``: SIGHUP was sent, so only a status written after ``before`` counts (a
        forced reload keeps the spec hash)."""
        token = json.dumps(
            {
                "hash": meta.spec_hash,
                "before": before.updated if before else None,
                "reloaded": reloaded,
            }
        )
        return environment.Deployment(api.name, api.kind, action, _url(meta), token)

    def _listen(
        self, api: RealtimeAPI, previous: state.Meta | None, reserved: frozenset[int]
    ) -> socket.socket:
        """The API's listening socket: on its local_port, else its last port, else the next
        free one from 8888."""
        port = api.networking.local_port
        if port is not None:
            try:
                return processes.listen(port)
            except OSError:  # taken since _check_port looked
                raise _port_taken(api, port) from None
        taken = reserved | {meta.port for meta in self._metas(exclude=api.name)}
        if previous and previous.port not in taken:
            with contextlib.suppress(OSError):
                return processes.listen(previous.port)  # keep the endpoint the user knows
        try:
            return processes.listen_on_first_free(taken)
        except OSError as exc:
            raise errors.ClusterError(f"api '{api.name}': {exc}") from None

    # -- rollout ------------------------------------------------------------------------------

    def rollout(self, deployment: environment.Deployment) -> environment.Rollout:
        meta = self.state.read_meta(deployment.name)
        if meta is None:
            return environment.Rollout("failed", "it was deleted meanwhile")
        token = json.loads(deployment.token)
        status = self._status_file(meta)
        ready = status is not None and status.state in _SERVING
        fresh = status is not None and status.updated != token["before"]
        # After a SIGHUP, only a status written since counts, and a failed reload leaves a cause.
        reloaded = not token.get("reloaded") or (fresh and status is not None and not status.cause)
        if status and ready and status.spec_hash == token["hash"] and reloaded:
            return environment.Rollout("ready")
        lines = logfile.read_lines(self.state.files(meta.name).log, meta.log_offset)
        if not self._alive(meta) or (status and status.state == RuntimeState.FAILED):
            reason = _death(meta, status, lines) or "the process exited"
            return environment.Rollout("failed", reason, logfile.tail(lines))
        if status and ready and fresh:
            reason = _cause(status, lines) or "the new spec was not loaded"
            return environment.Rollout(
                "failed", f"{reason}; the previous version keeps serving", logfile.tail(lines)
            )
        detail = "starting" if status is None else _PENDING.get(status.state, status.state)
        said = logfile.last_word(lines)  # a slow __init__ shows what it is doing
        return environment.Rollout("pending", f"{detail}: {said}" if said else detail)

    # -- get ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return self.state.names()

    def get(self, name: str | None = None) -> list[environment.APIStatus]:
        metas = [self._meta(name)] if name else self._metas()
        return [self._api_status(meta, details=name is not None) for meta in metas]

    def _api_status(self, meta: state.Meta, details: bool = False) -> environment.APIStatus:
        row = environment.APIStatus(
            env=self.name,
            name=meta.name,
            kind=meta.kind,
            status=APIState.ERROR,
            up_to_date=0,
            requested=1,
            last_update=meta.updated,
            endpoint=_url(meta),
            sample=samples.read(Path(meta.project_dir)),
        )
        status = self._status_file(meta)
        if not self._alive(meta) or (status and status.state == RuntimeState.FAILED):
            lines = logfile.read_lines(self.state.files(meta.name).log, meta.log_offset)
            message = f"the process is not running: {_death(meta, status, lines) or 'it exited'}"
            return dataclasses.replace(row, message=message, log_tail=logfile.tail(lines))
        base = f"http://{HOST}:{meta.port}"
        if status is not None and status.state == RuntimeState.ASLEEP:  # the master holds the port
            fresh = int(status.spec_hash == meta.spec_hash)
            return dataclasses.replace(
                row, status=APIState.SCALED_TO_ZERO, requested=0, up_to_date=fresh
            )
        live = status is not None and status.state == RuntimeState.READY and probe.ready(base)
        row = dataclasses.replace(
            row,
            status=APIState.LIVE if live else APIState.UPDATING,
            up_to_date=int(live and status is not None and status.spec_hash == meta.spec_hash),
        )
        if status and status.cause:
            lines = logfile.read_lines(self.state.files(meta.name).log, meta.log_offset)
            row = dataclasses.replace(row, message=status.cause, log_tail=logfile.tail(lines))
        counts = probe.metrics(base, meta.name)
        row = row if counts is None else probe.with_figures(row, counts)
        models = format.model_lines(probe.description(base)) if details and live else ()
        return dataclasses.replace(row, sections=(("models", models),)) if models else row

    # -- logs, predict, delete ----------------------------------------------------------------

    def logs(
        self, name: str, follow: bool, pod: str | None = None
    ) -> Iterator[environment.LogLine]:
        files = self.state.files(self._meta(name).name)
        if pod is not None:
            raise errors.CortexError("--pod is for cluster environments; a local API has one")
        keep_going = files.meta.exists if follow else lambda: False
        return (environment.LogLine("", line) for line in logfile.follow(files.log, keep_going))

    def predict(self, name: str, request: environment.Request) -> environment.Reply:
        meta = self._meta(name)
        if not self._alive(meta):
            raise errors.ClusterError(
                f"api '{name}' is not running; see `cortex get {name}` and `cortex logs {name}`"
            )
        url = f"http://{HOST}:{meta.port}{meta.endpoint}"
        timeout = httpx.Timeout(None, connect=5)
        try:
            return posting.post(url, request, self._auth_header(name), timeout, trust_env=False)
        except httpx.HTTPError as exc:
            raise errors.ClusterError(f"api '{name}' did not answer at {url}: {exc}") from None

    def delete(self, name: str, wait: bool = True) -> None:
        with self.state.lock():
            meta = self.state.read_meta(name)
            if meta is None and not self.state.files(name).folder.is_dir():
                self._meta(name)  # raises: not deployed
            if meta is not None:
                self._stop(meta)
            self.state.remove(name)

    # -- helpers ------------------------------------------------------------------------------

    def _auth_header(self, name: str) -> dict[str, str]:
        """With ``networking.auth``, the bearer token from this shell, where the API got it."""
        text = self.state.files(name).spec.read_text()
        auth = next((api.networking.auth for api in parse_specs(text) if api.name == name), None)
        token = os.environ.get(auth.token_env, "") if auth is not None else ""
        return {"authorization": f"Bearer {token}"} if token else {}

    def _meta(self, name: str) -> state.Meta:
        meta = self.state.read_meta(name)
        if meta is not None:
            return meta
        raise environment.not_deployed(name, self.name, self.names())

    def _metas(self, exclude: str | None = None) -> list[state.Meta]:
        metas = (self.state.read_meta(name) for name in self.names() if name != exclude)
        return [meta for meta in metas if meta is not None]

    def _alive(self, meta: state.Meta) -> bool:
        return processes.is_ours(meta.pid, str(self.state.files(meta.name).spec))

    def _status_file(self, meta: state.Meta) -> RuntimeStatus | None:
        """The runtime's status, if it was written by the process we started."""
        status = self.state.read_status(meta.name)
        return status if status is not None and status.pid == meta.pid else None

    def _stop(self, meta: state.Meta) -> None:
        processes.stop(meta.pid, str(self.state.files(meta.name).spec), STOP_GRACE)
        processes.wait_port_free(meta.port, 5)


def _launch(
    name: str,
    files: state.APIFiles,
    folder: Path,
    sock: socket.socket,
    python: str,
    env: dict[str, str],
) -> int:
    """Start the runtime of one API with ``python`` in the background, listening on
    ``sock``; its pid."""
    args = RuntimeArgs(
        spec=str(files.spec),
        api=name,
        project_dir=str(folder),
        status_file=str(files.status),
        access_log=True,  # `cortex logs` shows each request, as a local tool should
    )
    # cwd: a predictor that opens "model.pkl" finds it in its project, as in a replica.
    return processes.start_runtime(args, files.log, cwd=folder, env=env, sock=sock, python=python)


def _with_project(api: RealtimeAPI, sha256: str) -> RealtimeAPI:
    """``api`` with the archive hash of its project, as ``cortex deploy`` sends it to a cluster."""
    return api.model_copy(update={"project": api.project.model_copy(update={"sha256": sha256})})


def _spec_copy(api: RealtimeAPI) -> str:
    """The spec file the runtime reads: this one API, as validated (JSON is YAML).

    Only the fields the user set (and ``project.sha256``): the runtime derives the same defaults,
    and a default written out would read as chosen (``predictor.dependencies.pip`` must then
    exist)."""
    data = api.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps([data], indent=2) + "\n"


def _check_env_refs(api: RealtimeAPI, env: Mapping[str, str]) -> None:
    """Each required ``env_refs`` variable must be set in ``env``, which the runtime inherits."""
    for name, ref in sorted(api.predictor.env_refs.items()):
        if ref.optional or name in env:
            continue
        source = f"Secret '{ref.secret}'" if ref.secret else f"ConfigMap '{ref.config_map}'"
        raise errors.CortexError(
            f"api '{api.name}': predictor.env_refs.{name} reads key '{ref.key}' of {source} "
            f"on a cluster; the local environment takes it from your shell: "
            f"export {name}=... and deploy again"
        )


def _port_taken(api: RealtimeAPI, port: int) -> errors.ClusterError:
    return errors.ClusterError(
        f"api '{api.name}': networking.local_port {port} is already in use by another program; "
        "choose another port (or leave local_port out to get a free one)"
    )


def _cause(status: RuntimeStatus | None, lines: Sequence[str]) -> str | None:
    """Why the runtime failed: its own word in the status file, else its last logged error
    (a process that died before it could write one)."""
    return (status and status.cause) or logfile.last_error(lines)


def _death(meta: state.Meta, status: RuntimeStatus | None, lines: Sequence[str]) -> str | None:
    """Why the runtime is not running. One that died while serving says so itself if it crashed;
    with no word of its own it was killed. The log's last error is then an older one it
    recovered from (a replaced worker), and a failed update's cause is not why it died."""
    if status is None or status.state in (RuntimeState.LOADING, RuntimeState.FAILED):
        return _cause(status, lines)
    return logfile.master_crash(lines) or (
        f"its main process (pid {meta.pid}) died while {status.state}, without logging why: "
        "killed by a signal (SIGKILL, or the out-of-memory killer: see `dmesg`)"
    )


def _url(meta: state.Meta) -> str:
    return f"http://localhost:{meta.port}{meta.endpoint}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
