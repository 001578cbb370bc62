"""``python -m cortex.runtime``: the master process of one replica.

The master binds the port first (a taken port fails in milliseconds; ``--port 0`` picks a free
one, logged and written to the status file), then forks
``processes_per_replica`` workers that all accept on that one socket and share the replica's
admission counts and metrics. It never imports the user's code. Signals:

- SIGTERM / SIGINT: drain every worker, then exit 0.
- SIGHUP: reload the spec with no downtime: new workers load while the old ones serve; once all
  new ones are ready the old ones drain (killed if they still run ``networking.timeout`` plus
  a few seconds later: their requests have been answered 504 by then). If the new predictor
  fails, the old workers stay.
- A worker that dies (an exit, a segfault, the OOM killer's SIGKILL) is replaced (the new one
  loads before it takes requests); the log says which one died and how, and the admission slots
  it held are returned. Its open connections are closed by the kernel.
- The master's own death, even by SIGKILL, kills its workers (a parent-death signal): no orphan
  keeps the port.
- ``autoscaling.min_replicas: 0``: after ``scale_to_zero_after`` with no request in flight or
  answered, the workers stop and the master holds the port (:mod:`cortex.runtime.hold`): the
  next request wakes them, and waits, as the cluster's activator holds it.

``--status-file`` keeps a :class:`cortex.contracts.RuntimeStatus` current for tools
(``cortex get``, ``cortex deploy``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

from cortex import contracts
from cortex.contracts import DEFAULT_PORT, Flag, RuntimeState, RuntimeStatus
from cortex.errors import CortexError
from cortex.runtime import auth, children, hold, limits, logs, metrics, sharedmem, worker
from cortex.runtime.limits import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, Limits
from cortex.spec import RealtimeAPI, load_specs, parse_api_spec, parse_specs, spec_hash

log = logging.getLogger("cortex.runtime")
TICK = 0.05
RESTART_BACKOFF = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # by replacements in the last window
RESTART_WINDOW = 60.0
DRAIN_MARGIN = 5.0  # seconds past networking.timeout before a draining old worker is killed
SharedState = sharedmem.SharedState


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex.runtime", description="Serve one API of a cortex.yaml over HTTP."
    )
    add = parser.add_argument
    add(Flag.SPEC, default="cortex.yaml", help="the API spec file (cortex.yaml)")
    add(Flag.SPEC_ENV, metavar="VAR", help="read the API spec as JSON from this env variable")
    add(Flag.API, help="the API to serve (default: the only one in the file)")
    add(Flag.PROJECT_DIR, help="where predictor.path is resolved (default: the spec's folder)")
    add(Flag.HOST, default="0.0.0.0", help="address to listen on")
    add(Flag.PORT, type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0: a free one)")
    add(Flag.FD, type=int, help="serve on this inherited listening socket (not --host/--port)")
    add(Flag.MAX_BODY_BYTES, type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies: 413")
    add(
        Flag.BODY_TIMEOUT,
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help=f"seconds a request body may take to arrive: 408 after ({DEFAULT_BODY_TIMEOUT:g})",
    )
    limits.add_connection_flags(parser)
    add(Flag.ACCESS_LOG, action="store_true", help="log every request (costs throughput)")
    add(Flag.DRAIN_GRACE, type=float, default=0.0, help="seconds to keep accepting after SIGTERM")
    add(Flag.GRACEFUL_TIMEOUT, type=int, default=30, help="max seconds for in-flight requests")
    add(Flag.STATUS_FILE, help="keep a JSON status file here")
    add(
        Flag.ANY_PATH,
        action="store_true",
        help="behind a route that picks the path: a POST to any path but the runtime's own "
        "(health, readiness, metrics, docs) is a prediction",
    )
    return parser.parse_args(argv)


def read_api(args: argparse.Namespace) -> tuple[RealtimeAPI, Path]:
    """The API to serve and its project folder, from --spec-env or --spec; with
    ``networking.auth``, its token must be set (or it would serve an open API)."""
    api, project = _read_spec(args)
    auth.required_token(api, os.environ)
    return api, project


def _read_spec(args: argparse.Namespace) -> tuple[RealtimeAPI, Path]:
    spec_path = Path(args.spec).resolve()
    project = Path(args.project_dir).resolve() if args.project_dir else spec_path.parent
    if args.spec_env:
        raw = json.loads(contracts.joined_spec_env(os.environ, args.spec_env) or "null")
        if not isinstance(raw, dict):
            raise CortexError(f"${args.spec_env} must hold the API spec as a JSON object")
        name = args.api or raw.get("name", "")
        body = {k: v for k, v in raw.items() if k not in ("name", "kind")}
        return parse_api_spec(name, body, project), project
    if args.project_dir:
        apis = parse_specs(spec_path.read_text(), project, source=args.spec)
    else:
        apis = load_specs(spec_path)
    return select_api(apis, args.api, args.spec), project


def select_api(apis: list[RealtimeAPI], name: str | None, spec: str) -> RealtimeAPI:
    names = ", ".join(api.name for api in apis)
    if name is None:
        if len(apis) == 1:
            return apis[0]
        raise CortexError(f"{spec} defines {len(apis)} APIs ({names}); choose one with --api")
    for api in apis:
        if api.name == name:
            return api
    raise CortexError(f"{spec}: no API named {name!r} (defined: {names})")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def inherit(fd: int) -> socket.socket:
    """The listening socket a parent bound for us (``--fd``): it keeps the port from the moment
    it was chosen, so no other program can take it before we listen."""
    sock = socket.socket(fileno=fd)
    if (
        sock.type != socket.SOCK_STREAM
        or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
    ):
        sock.detach()
        raise OSError(f"file descriptor {fd} is not a listening TCP socket")
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        api, project = read_api(args)
    except (CortexError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(api.name, api.predictor.log_level)
    try:
        sock = inherit(args.fd) if args.fd is not None else bind(args.host, args.port)
    except OSError as exc:
        cause = f"cannot listen on {args.host}:{args.port}: {exc}"
        log.error("%s (choose another %s)", cause, Flag.PORT)
        write_status(args.status_file, args.port, RuntimeState.FAILED, spec_hash(api), cause)
        return 2
    _raise_file_limit()
    options = worker.WorkerOptions(
        limits=Limits(max_body_bytes=args.max_body_bytes, body_timeout=args.body_timeout),
        connections=limits.connection_limits(args),
        access_log=args.access_log,
        drain_grace=args.drain_grace,
        graceful_timeout=args.graceful_timeout,
        any_path=args.any_path,
    )
    master = Master(args, api, project, sock, options)
    try:
        return master.run()
    except Exception as exc:
        # Its workers die with it (a parent-death signal); tools read why in the log and the
        # status file, not an older error the replica had recovered from.
        master.cause = f"the master process crashed: {type(exc).__name__}: {exc}"
        log.critical("%s", master.cause, exc_info=exc)
        with contextlib.suppress(OSError):
            master.status(RuntimeState.FAILED)
        return 1


class Master:
    """Forks, watches, reloads and drains the worker processes of one replica."""

    def __init__(
        self,
        args: argparse.Namespace,
        api: RealtimeAPI,
        project: Path,
        sock: socket.socket,
        options: worker.WorkerOptions,
    ) -> None:
        self.args, self.api, self.project, self.sock, self.options = (
            args,
            api,
            project,
            sock,
            options,
        )
        self.port = int(sock.getsockname()[1])  # the one bound, also when --port 0 asked for any
        self.pid = os.getpid()  # a worker whose parent is another has lost its master
        self.shared = sharedmem.ReplicaMemory(
            api.autoscaling.max_replica_concurrency, metrics.WIDTH
        )
        self.workers: dict[int, int] = {}  # pid -> slot, the generation serving
        self.next_slot = 0
        self.cause: str | None = None  # why the predictor failed to load or a reload failed
        self.signals: list[int] = []
        self.draining_old: dict[int, int] = {}  # the previous generation, after a reload
        self.drain_deadline = 0.0  # when draining old workers are killed
        self.restarts: list[float] = []  # when dead workers were replaced, lately
        self.pending_restarts: list[float] = []  # when the next replacements are due
        self.idle = hold.IdleTimer(time.monotonic())  # min_replicas 0: since when idle
        self.relays: list[int] = []  # processes piping requests held while asleep
        self.foreign_fds: list[int] = []  # what a forked worker must close (held clients)

    def run(self) -> int:
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(handled, self._on_signal)
        self.status(RuntimeState.LOADING)
        log.info("listening on %s:%d", self.sock.getsockname()[0], self.port)
        self.workers = self.spawn(self.api, load_before_serving=False)
        if not self.wait_ready(self.workers):
            self.cause = self.shared.cause() or "a worker exited while loading"
            log.error("exiting: the predictor could not be loaded")
            self.stop(self.workers, signal.SIGKILL)
            self.status(RuntimeState.FAILED)
            return 1
        self.shared.state = SharedState.READY
        self.status(RuntimeState.READY)
        while True:
            if self.signals:
                sig = self.signals.pop(0)
                if sig == signal.SIGHUP:
                    self.reload()
                    continue
                return self.shutdown(sig)
            self.replace_dead_workers()
            if self._idle_enough() and not self.sleep():
                return 1
            time.sleep(TICK)

    def _idle_enough(self) -> bool:
        """An API that may scale to zero idle for ``scale_to_zero_after`` (and not reloading)."""
        self.relays = [pid for pid in self.relays if children.exited(pid) is None]
        if not self.api.scales_to_zero or self.draining_old:
            return False
        # Relayed requests count in the workers' numbers; an idle keep-alive connection that a
        # relay still pipes is no activity (the workers' drain closes it).
        activity = (self.shared.in_flight(), metrics.answered(self.shared.totals()))
        idle_for = self.idle.observe(time.monotonic(), activity)
        return idle_for >= self.api.autoscaling.scale_to_zero_after

    def sleep(self) -> bool:
        """Stop the workers, hold the port until a request comes, wake; False if waking failed
        (the master then exits, as when the predictor fails at start)."""
        scaling = self.api.autoscaling
        log.info(
            "idle for %gs: stopping the workers, holding the port", scaling.scale_to_zero_after
        )
        self.stop(self.workers, signal.SIGTERM)
        self.workers = {}
        self.status(RuntimeState.ASLEEP)
        holder = hold.Holder(self.sock, scaling.max_queue_length, scaling.scale_from_zero_timeout)
        while not holder.wake:
            if self.signals:
                holder.refuse("the API is stopping")
                return True  # the loop handles the signal
            holder.poll(TICK)
        started = time.monotonic()
        log.info("a request came: waking")
        self.status(RuntimeState.LOADING)
        self.foreign_fds = holder.fds()
        self.workers = self.spawn(self.api, load_before_serving=True)
        self.foreign_fds = []
        while not self._ready_or_failed(self.workers):
            holder.poll(TICK)
        if not all(self.shared.worker_state(s) == SharedState.READY for s in self.workers.values()):
            self.cause = self.shared.cause() or "a worker exited while loading"
            holder.refuse("the API could not wake: " + self.cause)
            self.stop(self.workers, signal.SIGKILL)
            self.status(RuntimeState.FAILED)
            return False
        relay = holder.release(_connectable(self.sock.getsockname()), self.pid)
        if relay is not None:
            self.relays.append(relay)
        log.info("woken in %.3fs", time.monotonic() - started)
        self.idle = hold.IdleTimer(time.monotonic())
        self.status(RuntimeState.READY)
        return True

    def _ready_or_failed(self, workers: dict[int, int]) -> bool:
        states = [self.shared.worker_state(s) for s in workers.values()]
        died = any(children.exited(pid) is not None for pid in workers)
        return died or SharedState.FAILED in states or all(s == SharedState.READY for s in states)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)

    def spawn(self, api: RealtimeAPI, load_before_serving: bool) -> dict[int, int]:
        started = {}
        for _ in range(api.predictor.processes_per_replica):
            slot, self.next_slot = self.next_slot, self.next_slot + 1
            self.shared.set_worker_state(slot, SharedState.LOADING)
            # Out of the collector's reach: what every worker inherits (FastAPI, uvicorn...) is
            # never garbage, and a full collection walking it stalled requests ~20 ms (p99).
            gc.freeze()
            pid = os.fork()
            if pid == 0:  # the worker
                _worker_main(api, self, slot, load_before_serving)
            started[pid] = slot
        return started

    def wait_ready(self, workers: dict[int, int]) -> bool:
        """Wait until every worker is ready (True) or one failed or died (False)."""
        while True:
            for pid, slot in workers.items():
                if (
                    self.shared.worker_state(slot) == SharedState.FAILED
                    or children.exited(pid) is not None
                ):
                    return False
            if all(self.shared.worker_state(s) == SharedState.READY for s in workers.values()):
                return True
            if any(s in (signal.SIGTERM, signal.SIGINT) for s in self.signals):
                return False
            time.sleep(TICK)

    def reload(self) -> None:
        try:
            api, _ = read_api(self.args)
        except (CortexError, OSError, ValueError) as exc:
            self.fail_reload(f"the new spec is invalid: {exc}")
            return
        log.info("reloading: loading the new spec in new processes")
        self.shared.set_cause("")
        self.status(RuntimeState.RELOADING)
        self.shared.set_limit(api.autoscaling.max_replica_concurrency)
        new = self.spawn(api, load_before_serving=True)
        if not self.wait_ready(new):
            self.stop(new, signal.SIGKILL)
            self.shared.set_limit(self.api.autoscaling.max_replica_concurrency)
            cause = self.shared.cause() or "a worker exited while loading"
            self.fail_reload(cause)
            return
        old, self.workers, self.api, self.cause = self.workers, new, api, None
        self.stop(old, signal.SIGUSR1, wait=False)  # handoff: old processes drain on their own
        self.draining_old.update(old)
        self.drain_deadline = time.monotonic() + self.api.networking.timeout + DRAIN_MARGIN
        log.info("reloaded: %d new process(es) serving", len(new))
        self.status(RuntimeState.READY)

    def fail_reload(self, cause: str) -> None:
        self.cause = cause
        log.error("reload failed: %s; the old version keeps serving", cause)
        self.status(RuntimeState.READY)

    def replace_dead_workers(self) -> None:
        """Reap workers; replace the dead, waiting longer the more often they died lately."""
        now = time.monotonic()
        for pid, slot in list(self.workers.items()):
            code = children.exited(pid)
            if code is None:
                continue
            del self.workers[pid]
            held = self.shared.reclaim(slot)
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW]
            delay = RESTART_BACKOFF[min(len(self.restarts), len(RESTART_BACKOFF) - 1)]
            log.error(
                "worker %d (slot %d) %s with %d request(s) in flight; starting a new one in %gs",
                pid,
                slot,
                children.how_it_ended(code),
                held,
                delay,
            )
            self.pending_restarts.append(now + delay)
        while self.pending_restarts and self.pending_restarts[0] <= now:
            self.pending_restarts.pop(0)
            self.restarts.append(now)
            self.workers.update(self.spawn_one(self.api))
        self.reap_old(now)

    def reap_old(self, now: float) -> None:
        """Forget drained old workers; kill those still draining past their deadline."""
        for pid, slot in list(self.draining_old.items()):
            if children.exited(pid) is None and now > self.drain_deadline:
                log.error(
                    "worker %d (slot %d) still draining after a reload: killing it", pid, slot
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                children.exited(pid, block=True)
            if children.exited(pid) is not None:
                self.shared.reclaim(slot)
                del self.draining_old[pid]

    def spawn_one(self, api: RealtimeAPI) -> dict[int, int]:
        one = api.model_copy(
            update={"predictor": api.predictor.model_copy(update={"processes_per_replica": 1})}
        )
        return self.spawn(one, load_before_serving=True)

    def shutdown(self, sig: int) -> int:
        log.info("received %s: draining, then exiting", signal.Signals(sig).name)
        self.shared.state = SharedState.DRAINING
        self.status(RuntimeState.DRAINING)
        self.sock.close()  # the workers keep their copies until they stop accepting
        everyone = {**self.workers, **self.draining_old}
        self.stop(everyone, signal.SIGTERM)
        log.info("drained; exiting")
        return 0

    def stop(self, workers: dict[int, int], sig: int, wait: bool = True) -> None:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + self.options.drain_grace + self.options.graceful_timeout + 5
        while wait and workers and time.monotonic() < deadline:
            workers = {pid: s for pid, s in workers.items() if children.exited(pid) is None}
            time.sleep(TICK)
        for pid in workers if wait else ():
            os.kill(pid, signal.SIGKILL)
            children.exited(pid, block=True)
        for slot in workers.values() if wait else ():
            self.shared.reclaim(slot)

    def status(self, state: RuntimeState) -> None:
        write_status(self.args.status_file, self.port, state, spec_hash(self.api), self.cause)


def write_status(
    path: str | None, port: int, state: RuntimeState, digest: str, cause: str | None
) -> None:
    """Replace the status file at ``path`` (if any) in one step: readers never see half of it."""
    if not path:
        return
    status = RuntimeStatus(
        pid=os.getpid(),
        port=port,
        state=state,
        spec_hash=digest,
        cause=cause,
        updated=time.time(),
    )
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(status.to_json())
    os.replace(tmp, path)


def _worker_main(api: RealtimeAPI, master: Master, slot: int, load_before_serving: bool) -> None:
    """In the forked child: become a worker, never return."""
    code = 1
    try:
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(handled, signal.SIG_DFL)
        children.die_with_parent(master.pid)
        for fd in master.foreign_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        code = worker.serve(
            api,
            master.project,
            master.sock,
            master.shared,
            slot,
            master.options,
            load_before_serving,
        )
    except BaseException as exc:
        log.error("worker crashed: %s: %s", type(exc).__name__, exc, exc_info=exc)
    finally:
        sys.stdout.flush()
        os._exit(code)


def _connectable(address: tuple[str, int]) -> tuple[str, int]:
    """Where to connect to reach a socket bound to ``address`` (any address: loopback)."""
    host, port = address[0], address[1]
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host), port


def _raise_file_limit() -> None:
    """Open files up to the hard limit (a shell's soft limit is often 1,024): each connection
    is one, and a worker may hold --max-connections of them."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
