"""A fake cluster for tests and benchmarks: the fake API server on 127.0.0.1 in its own thread.

``FakeCluster`` serves over real HTTP, writes a kubeconfig for kubectl and kopf, and offers
thread-safe helpers that run on the server's loop: read and write objects, drive the pods of a
Deployment, add users with their own kubeconfigs, list the requests served, inject faults
(errors, throttling, a slow server), break and expire watches, and poll until a condition holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import datetime
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import kmock
import yaml

from tests.fakeapi import access, admission, hpa, merging, streams, workloads
from tests.fakeapi.access import Record
from tests.fakeapi.faults import Fault
from tests.fakeapi.selectors import label_selector
from tests.fakeapi.server import FakeKubernetes
from tests.fakeapi.store import Kind, Obj, Store

T = TypeVar("T")


def kubeconfig(
    url: str, namespace: str = "default", token: str | None = None, context: str = "fake"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": token} if token else {}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
            }
        ],
        "current-context": context,
    }


class FakeCluster:
    """``with FakeCluster(tmp_path) as cluster:``; ``cluster.kubeconfig`` is the file to use.

    ``cluster.kubeconfig`` and the helpers act as the admin (``system:masters``). With ``token``,
    every request needs a token: ``Authorization: Bearer <token>`` for the admin (the kubeconfig
    has it), or a user's (:meth:`add_user`).
    """

    def __init__(self, folder: Path, *, namespace: str = "default", token: str | None = None):
        self.kubeconfig = Path(folder) / "kubeconfig"
        self.namespace = namespace
        self.token = token
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-apiserver", daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._fake: FakeKubernetes | None = None
        self._error: BaseException | None = None
        self.refusing = False  # a test made it refuse requests (deny, reject) at some point

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None or not self.url:
            raise RuntimeError(f"the fake API server did not start: {self._error!r}")
        config = kubeconfig(self.url, self.namespace, self.token)
        self.kubeconfig.write_text(yaml.safe_dump(config))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with FakeKubernetes() as fake, kmock.Server(fake) as server:
            self._fake = fake
            fake.access.token = self.token
            self.url = str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()
            fake.closing = True
            fake.store.wake()
            await asyncio.sleep(0.05)

    # --- running code on the server's loop --------------------------------------------------

    @property
    def fake(self) -> FakeKubernetes:
        """The kmock handler; touch it only through :meth:`call` (it lives in another thread)."""
        assert self._fake is not None
        return self._fake

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the server's loop and return its result."""

        async def run() -> T:
            return fn(*args, **kwargs)

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(30)

    @property
    def store(self) -> Store:
        """The server's store; use it only inside :meth:`call`."""
        return self.fake.store

    def _where(self, resource: str, namespace: str | None) -> tuple[Kind, str | None]:
        kind = self.store.kind(resource)
        return kind, (namespace or self.namespace) if kind.namespaced else None

    # --- objects (``resource`` as kmock spells it: ``apps/v1/deployments``) ------------------

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        """A copy of the object, or None."""

        def get() -> Obj | None:
            obj = self.store.find(*self._where(resource, namespace), name)
            return copy.deepcopy(obj)

        return self.call(get)

    def select(
        self, resource: str, labels: str | None = None, namespace: str | None = None
    ) -> list[Obj]:
        """Copies of the objects of a namespace, optionally only those matching ``labels``."""
        return self.call(
            lambda: self.store.select(*self._where(resource, namespace), label_selector(labels))[0]
        )

    def history(self, resource: str, name: str, namespace: str | None = None) -> list[Obj | None]:
        """Every stored version of an object (kmock keeps them), ``None`` where it was deleted."""

        def history() -> list[Obj | None]:
            kind, ns = self._where(resource, namespace)
            key = (kind.resource, ns, name)
            if key not in self.store.objects:
                return []
            return [
                None if v is None else copy.deepcopy(dict(v.raw))
                for v in self.store.objects[key].history
            ]

        return self.call(history)

    def create(
        self, resource: str, body: Obj, namespace: str | None = None, manager: str | None = None
    ) -> Obj:
        """Create as ``manager`` (for managedFields) or as the cluster itself (no entry)."""
        where = self._where(resource, namespace)
        return self.call(lambda: self.store.create(*where, body, manager=manager))

    def apply(
        self,
        resource: str,
        config: Obj,
        *,
        manager: str,
        force: bool = False,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """Server-side apply as ``manager`` (raises ``ApiError`` on a conflict)."""
        name = config["metadata"]["name"]
        return self.call(
            lambda: self.store.apply(
                *self._where(resource, namespace),
                name,
                config,
                manager=manager,
                force=force,
                subresource=subresource,
            )
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Obj,
        namespace: str | None = None,
        subresource: str | None = None,
        manager: str | None = None,
    ) -> Obj:
        """A JSON merge patch, as ``kubectl patch --type=merge`` sends; as ``manager`` (e.g.
        ``kube-controller-manager`` for what the HPA writes) or as the cluster (no entry)."""

        def change(obj: Obj) -> Obj:
            return merging.merge_patch(obj, patch)

        where = self._where(resource, namespace)
        return self.call(
            lambda: self.store.update(
                *where, name, change, subresource=subresource, manager=manager
            )
        )

    def delete(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        return self.call(lambda: self.store.delete(*self._where(resource, namespace), name))

    def set_pods(
        self,
        deployment: str,
        state: str,
        *,
        count: int | None = None,
        since: datetime.datetime | None = None,
        namespace: str | None = None,
        ips: list[str] | None = None,
    ) -> list[str]:
        """Put the active pods of a Deployment's current ReplicaSet (the first ``count`` by name)
        in a state of ``POD_STATES`` (``ready``, ``image-pull``, ``oom``, ``crash``,
        ``unschedulable``, ``init-crash``, ``config-error``, ``evicted``, ``pending``), dated
        ``since`` or now, with the IPs ``ips`` (else their own or new ones); the controllers
        follow (a rollout moves on as new pods get ready)."""
        ns = namespace or self.namespace
        return self.call(
            workloads.set_pods, self.store, ns, deployment, state, count=count, since=since, ips=ips
        )

    def advance(self, seconds: float) -> None:
        """Move the cluster's clock on; the controllers re-evaluate their deadlines
        (``progressDeadlineSeconds``, ``minReadySeconds``) at once."""
        self.call(self.store.clock.advance, seconds)

    def set_hpa_status(
        self,
        name: str,
        *,
        current: int | None = None,
        desired: int | None = None,
        scaling_active: hpa.Condition | None = None,
        able_to_scale: hpa.Condition | None = None,
        scaling_limited: hpa.Condition | None = None,
        namespace: str | None = None,
    ) -> Obj:
        """Write an HPA's status as its controller would; each condition is (status, reason,
        message), e.g. ``scaling_active=(False, "FailedGetPodsMetric", "the HPA was unable to
        compute the replica count: unable to get metric ...")``. See ``hpa.set_status``."""
        return self.call(
            lambda: hpa.set_status(
                self.store,
                namespace or self.namespace,
                name,
                current=current,
                desired=desired,
                scaling_active=scaling_active,
                able_to_scale=able_to_scale,
                scaling_limited=scaling_limited,
            )
        )

    def reject(
        self,
        resource: str,
        *,
        kind: str,
        message: str | None = None,
        webhook: str = "validate.policy.example.com",
        namespace: str | None = None,
        verbs: tuple[str, ...] = ("create",),
    ) -> None:
        """Refuse ``verbs`` (``create``, ``update``, ``delete``) on ``resource`` (as RBAC names
        it: ``pods``, ``deployments.apps``) as admission ``kind`` would: ``quota``,
        ``pod-security`` or ``webhook`` (named ``webhook``); ``message`` replaces the default
        reason after the plugin's own words. The controllers' writes are refused too (a
        ReplicaSet whose pods are refused says ``ReplicaFailure``) and retried when the rules
        change."""
        self.refusing = True
        rule = admission.Rule(resource, kind, message, webhook, namespace, tuple(verbs))
        self.call(self.store.admission.add, rule)

    def admit_all(self) -> None:
        """Forget every :meth:`reject`; refused pods are created now."""
        self.call(self.store.admission.clear)

    def append_log(self, namespace: str, pod: str, line: str, container: str | None = None) -> None:
        """Add a line to a container's log (the pod's first container by default); ``follow``
        readers get it at once. ``LookupError`` if the pod does not exist."""
        self.call(lambda: self.fake.logs.append(self.store, namespace, pod, line, container))

    def route_service(self, namespace: str, name: str, port: int | str, url: str) -> None:
        """Send the service proxy's requests for ``name:port`` (the port's number or name) to
        ``url``, where a cluster would pick an endpoint: e.g. ``http://127.0.0.1:8888``."""
        self.call(lambda: self.fake.routes.__setitem__((namespace, name, str(port)), url))

    def route_pod(self, namespace: str, pod: str, port: int, url: str) -> None:
        """Send the pod proxy's requests for ``pod:port`` to ``url`` (e.g. a real runtime)."""
        self.call(lambda: self.fake.routes.__setitem__((namespace, f"pods/{pod}", str(port)), url))

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` (``get``, ``list``, ``watch``, ``create``, ``update``,
        ``patch``, ``delete``, ``deletecollection`` or ``*``) on ``resource`` as RBAC names it
        (``configmaps``, ``deployments.apps``, ``realtimeapis.cortex.dev``, ``pods/log``,
        ``services/proxy``), in ``namespace`` or everywhere."""
        self.refusing = True
        self.call(lambda: self.fake.access.denied.append((verb, resource, namespace)))

    def allow_all(self) -> None:
        """Forget every :meth:`deny`."""
        self.call(lambda: self.fake.access.denied.clear())

    def served(self) -> list[tuple[str, str, int]]:
        """The resource requests answered so far: (method, path, status code)."""
        return self.call(lambda: list(self.fake.served))

    def requests(self) -> list[Record]:
        """The resource requests answered so far over HTTP, as RBAC sees them: user, verb, API
        group, resource, subresource, namespace, name, and the HTTP code."""
        return self.call(lambda: list(self.fake.requests))

    def admission_checks(self) -> list[Record]:
        """The permissions admission checked for requests (e.g. ``update`` on an owner's
        ``<plural>/finalizers`` for a ``blockOwnerDeletion``): code 200 allowed, 403 denied."""
        return self.call(lambda: list(self.fake.access.checks))

    # --- identities -------------------------------------------------------------------------

    def add_user(self, token: str, user: str, groups: tuple[str, ...] | list[str] = ()) -> None:
        """Requests with ``token`` act as ``user`` in ``groups``: authorised by the RBAC objects
        installed (a ServiceAccount is ``system:serviceaccount:<namespace>:<name>``, with its
        groups; every user is in ``system:authenticated``)."""
        identity = access.authenticated(user, groups)
        self.call(lambda: self.fake.access.users.__setitem__(token, identity))

    def kubeconfig_for(self, token: str, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig that authenticates with ``token`` to ``path``; returns it.

        kopf, the ``kubernetes`` client and httpx send the token; kubectl does not (client-go
        reads credentials only for https servers), so kubectl acts as the admin here."""
        path = Path(path)
        path.write_text(yaml.safe_dump(kubeconfig(self.url, namespace, token)))
        return path

    def install(self, objects: list[Obj]) -> list[Obj]:
        """Create each manifest (a Role, a ServiceAccount, ...) as the cluster, in order;
        namespaced ones without a namespace go to the default one."""

        def install() -> list[Obj]:
            created = []
            for obj in objects:
                kind = self._kind_of(obj["apiVersion"], obj["kind"])
                ns = (
                    (obj["metadata"].get("namespace") or self.namespace)
                    if kind.namespaced
                    else None
                )
                created.append(self.store.create(kind, ns, obj))
            return created

        return self.call(install)

    def _kind_of(self, api_version: str, kind: str) -> Kind:
        for served in self.store.kinds.values():
            if (served.api_version, served.kind) == (api_version, kind):
                return served
        raise LookupError(f"the fake serves no {kind} in {api_version}")

    # --- watches ------------------------------------------------------------------------------

    def compact(self) -> None:
        """Expire every resourceVersion so far: a watch that resumes from one gets a 410
        ``Expired`` ERROR event and its client must list again (running watches go on)."""
        self.call(lambda: self.store.compact())

    def disconnect_watches(self, resource: str | None = None) -> int:
        """Drop the connections of the open watches of ``resource`` (as RBAC names it:
        ``deployments.apps``, ``realtimeapis.cortex.dev``; None: all); their clients watch
        again from the last resourceVersion they saw. Returns how many were dropped."""
        return self.call(streams.cut, self.fake, resource)

    def expire_watches(self, resource: str | None = None) -> int:
        """:meth:`compact`, then :meth:`disconnect_watches`: the clients' next watch gets a
        410 ``Expired`` and they must list again (what they missed meanwhile included)."""
        self.compact()
        return self.disconnect_watches(resource)

    # --- faults -------------------------------------------------------------------------------

    def inject(
        self,
        verb: str = "*",
        resource: str = "*",
        *,
        code: int | None = None,
        retry_after: int | None = None,
        plain: bool = False,
        delay: float = 0.0,
        times: int | None = None,
        seconds: float | None = None,
        name: str | None = None,
        namespace: str | None = None,
        user: str | None = None,
    ) -> Fault:
        """Make requests (``verb`` on ``resource`` as RBAC names them: ``patch``,
        ``deployments.apps``; ``*`` for any; optionally only ``name``, ``namespace``, ``user``)
        wait ``delay`` seconds, and/or answer ``code`` (409, 429, 500, 503, 504) as a real
        server would (see ``faults``; 429 with ``retry_after``, ``plain`` for API Priority and
        Fairness's text), for the next ``times`` requests, for ``seconds``, or until
        :meth:`heal`. The fault's ``hits`` count the requests it acted on."""
        until = None if seconds is None else time.monotonic() + seconds
        fault = Fault(
            verb=verb,
            resource=resource,
            name=name,
            namespace=namespace,
            user=user,
            code=code,
            retry_after=retry_after,
            plain=plain,
            delay=delay,
            times=times,
            until=until,
        )
        self.call(self.fake.faults.active.append, fault)
        return fault

    def heal(self) -> None:
        """Forget every injected fault (requests waiting on a delay still wait it out)."""
        self.call(self.fake.faults.active.clear)

    def react(self, add: Callable[[FakeKubernetes], Any]) -> None:
        """Add kmock reactions that take priority over the fake, on the server's loop, e.g. fail
        the next create: ``cluster.react(lambda fake: fake[f"post {path}"][:1] << 503)``."""
        self.call(add, self.fake)


def wait_for(
    check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        time.sleep(interval)
