"""A Kubernetes cluster environment: the same commands, through the Kubernetes API only.

``deploy`` packs the project folder (:mod:`cortex.cli.project`) into an immutable ConfigMap named
after its hash, then server-side applies the ``RealtimeAPI`` (field manager ``cortex-cli``) and
makes the ConfigMap owned by it; the operator does the rest. An unchanged spec and unchanged
code write nothing. ``get`` reads the resource's status (the operator's), its pods, Events and
the pods' ``/metrics`` through the API server's pod proxy; ``predict`` goes through the
Service proxy, so no load balancer is needed; ``logs`` reads the pods' logs and follows new pods
of a rollout; ``delete`` removes the resource (its children and ConfigMaps go by owner
references) and waits until the Deployment is gone.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import queue
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import urllib3

from cortex import contracts, errors, samples
from cortex.cli import environment, format, kube, kubestatus, posting, probe, project
from cortex.contracts import APIState
from cortex.k8s import labels, resource
from cortex.k8s.deployment import CONTAINER_NAME, PROJECT_ARCHIVE_KEY
from cortex.spec import RealtimeAPI, parse_api_spec, spec_hash

__all__ = ["FIELD_MANAGER", "ClusterEnvironment"]

FIELD_MANAGER = kubestatus.MANAGER
DELETE_TIMEOUT = 120.0
_POLL = 1.0
_ANY_ERROR = range(400, 600)  # the API's own answers are shown as they are
_EVENTS_SHOWN = 5
_FAILED = frozenset(
    {
        APIState.ERROR,
        APIState.ERROR_IMAGE_PULL,
        APIState.ERROR_OOM,
        APIState.ERROR_REJECTED,
        APIState.ERROR_ROLLOUT_STUCK,
        APIState.ERROR_INIT,
        APIState.ERROR_CONFIG,
        APIState.COMPUTE_UNAVAILABLE,
    }
)


class ClusterEnvironment:
    """The APIs of one namespace of a cluster, as ``RealtimeAPI`` resources."""

    waits_by_default = False  # a cluster rollout can take minutes (a GPU node may be added)
    poll_seconds = 1.0  # each rollout check is two requests to a shared API server

    def __init__(self, name: str, connection: kube.Kube) -> None:
        self.name = name
        self.kube = connection
        self.namespace = connection.namespace

    # -- paths --------------------------------------------------------------------------------

    def _apis_path(self, name: str = "") -> str:
        base = f"/apis/{contracts.API_VERSION}/namespaces/{self.namespace}/{contracts.PLURAL}"
        return f"{base}/{name}" if name else base

    def _core(self, plural: str, name: str = "") -> str:
        base = f"/api/v1/namespaces/{self.namespace}/{plural}"
        return f"{base}/{name}" if name else base

    def _deployment_path(self, name: str) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{labels.child_name(name)}"

    # -- deploy -------------------------------------------------------------------------------

    def deploy(
        self,
        apis: Sequence[RealtimeAPI],
        config: Path,
        confirm: Callable[[str], bool],
        force: bool = False,
        deps: bool = True,
    ) -> list[environment.Deployment]:
        if force:
            raise errors.CortexError(
                f"--force reloads local APIs only; in environment '{self.name}' pods roll when "
                "the spec or a project file changes"
            )
        if not deps:
            raise errors.CortexError(
                f"--no-deps is for the local environment; environment '{self.name}' installs "
                "predictor.dependencies in each pod (see docs/images.md to bake them in)"
            )
        folder = config.resolve().parent
        archive = project.pack(folder)
        project.check_size(archive, folder)
        self._check_installed()
        return [self._deploy_one(api, archive, confirm) for api in apis]

    def _check_installed(self) -> None:
        self.kube.request("GET", f"/apis/{contracts.API_VERSION}")

    def _deploy_one(
        self, api: RealtimeAPI, archive: project.Archive, confirm: Callable[[str], bool]
    ) -> environment.Deployment:
        existing = self._read(self._apis_path(api.name))
        if existing is not None and not _managed_by_us(existing):
            managers = ", ".join(_managers(existing)) or "unknown"
            question = (
                f"realtimeapi '{api.name}' in namespace '{self.namespace}' was not created by "
                f"`cortex deploy` (managed by {managers}); take it over?"
            )
            if not confirm(question):
                raise errors.CortexError(
                    f"realtimeapi '{api.name}' in namespace '{self.namespace}' was not created "
                    f"by `cortex deploy` (managed by {managers}); deploy with -y to take it "
                    f"over, or delete it first (`kubectl delete {contracts.SHORT_NAMES[0]} "
                    f"{api.name} -n {self.namespace}`)"
                )
        config_map = resource.project_config_map_name(api.name, archive.sha256)
        project_ref = api.project.model_copy(
            update={"config_map": config_map, "sha256": archive.sha256}
        )
        wanted = api.model_copy(update={"project": project_ref})
        endpoint = wanted.endpoint
        if existing is not None and _served_spec_hash(existing) == spec_hash(wanted):
            token = _token(existing)
            return environment.Deployment(api.name, api.kind, "unchanged", endpoint, token)
        created = self._put_config_map(api.name, archive)
        try:
            applied = self._apply(resource.realtime_api_resource(wanted, self.namespace))
        except errors.CortexError as exc:
            if created:  # nothing lost on failure, nothing left behind either
                self.kube.request("DELETE", self._core("configmaps", config_map), ok=(404,))
            raise errors.CortexError(f"api '{api.name}': {exc}") from None
        self._own(config_map, applied)
        self._collect_config_maps(api.name, keep=config_map)
        action: environment.Action = "create" if existing is None else "update"
        return environment.Deployment(api.name, api.kind, action, endpoint, _token(applied))

    def _put_config_map(self, name: str, archive: project.Archive) -> bool:
        """Create the project's ConfigMap unless it exists (same name, same content); True when
        it was created now."""
        body = resource.project_config_map(name, self.namespace, archive.data, archive.sha256)
        path = self._core("configmaps")
        response = self.kube.request("POST", path, body=body, ok=(409,))
        if response.status != 409:
            return True
        found = self._read(self._core("configmaps", body["metadata"]["name"]))
        labels = (found or {}).get("metadata", {}).get("labels", {})
        if labels.get(contracts.LABEL_API_NAME) != name:
            raise errors.CortexError(
                f"configmap '{body['metadata']['name']}' in namespace '{self.namespace}' exists "
                "and does not belong to cortex; rename or delete it"
            )
        return False

    def _apply(self, body: dict[str, Any]) -> dict[str, Any]:
        path = self._apis_path(body["metadata"]["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        self.kube.request("PATCH", path, query=query, body=body, content_type=kube.APPLY)
        # Read back: some clients see no body on the 201 of an apply that created the object.
        applied = self._read(path)
        if applied is None:
            raise errors.ClusterError(f"{path} vanished right after it was applied")
        return applied

    def _own(self, config_map: str, owner: dict[str, Any]) -> None:
        meta = owner["metadata"]
        reference = {
            "apiVersion": contracts.API_VERSION,
            "kind": contracts.KIND,
            "name": meta["name"],
            "uid": meta["uid"],
        }
        patch = {"metadata": {"ownerReferences": [reference]}}
        self.kube.request(
            "PATCH",
            self._core("configmaps", config_map),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def _collect_config_maps(self, name: str, keep: str) -> None:
        """Delete the API's older ConfigMaps that neither its Deployment nor a pod still uses."""
        selector = [("labelSelector", f"{contracts.LABEL_API_NAME}={name}")]
        maps = self.kube.request("GET", self._core("configmaps"), query=selector).json()
        old = {item["metadata"]["name"] for item in maps.get("items", [])} - {keep}
        if not old:
            return
        used = set()
        deployment = self._read(self._deployment_path(name))
        if deployment is not None:
            used |= kubestatus.config_maps_of(deployment["spec"]["template"]["spec"])
        for pod in self._pods(name):
            used |= kubestatus.config_maps_of(pod.get("spec", {}))
        for stale in sorted(old - used):
            self.kube.request("DELETE", self._core("configmaps", stale), ok=(404,))

    # -- rollout ------------------------------------------------------------------------------

    def rollout(self, deployment: environment.Deployment) -> environment.Rollout:
        found = self._read(self._apis_path(deployment.name))
        if found is None:
            return environment.Rollout("failed", "it was deleted meanwhile")
        generation = json.loads(deployment.token or "{}").get("generation", 0)
        status = found.get("status") or {}
        if status.get("observedGeneration", 0) < generation:
            return environment.Rollout("pending", "waiting for the operator")
        state = kubestatus.state(status)
        requested, ready, current = (status.get(k, 0) for k in ("requested", "ready", "upToDate"))
        if state == APIState.LIVE and current >= requested:
            config_map = (found.get("spec", {}).get("project") or {}).get("configMap")
            if config_map:  # rolled out: older code is needed no more
                self._collect_config_maps(deployment.name, keep=config_map)
            return environment.Rollout("ready")
        if state in _FAILED:
            events = tuple(self._events(deployment.name))
            return environment.Rollout("failed", f"{state}: {status.get('message', '')}", events)
        detail = f"{ready}/{requested} ready, {current} up to date"
        latest = self._events(deployment.name)[-1:]
        return environment.Rollout("pending", f"{detail}; {latest[0]}" if latest else detail)

    # -- get ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        items = self.kube.request("GET", self._apis_path()).json().get("items", [])
        return sorted(item["metadata"]["name"] for item in items)

    def get(self, name: str | None = None) -> list[environment.APIStatus]:
        if name is not None:
            found = self._read(self._apis_path(name))
            if found is None:
                raise environment.not_deployed(name, self.name, self.names())
            return [self._status(found, details=True)]
        items = self.kube.request("GET", self._apis_path()).json().get("items", [])
        ordered = sorted(items, key=lambda item: item["metadata"]["name"])
        return [self._status(item, details=False) for item in ordered]

    def _status(self, found: dict[str, Any], details: bool) -> environment.APIStatus:
        meta, status = found["metadata"], found.get("status") or {}
        name = meta["name"]
        pods = self._pods(name)
        state = kubestatus.state(status)
        row = environment.APIStatus(
            env=self.name,
            name=name,
            kind=found.get("kind", contracts.KIND),
            status=state,
            up_to_date=int(status.get("upToDate", 0)),
            requested=int(status.get("requested", 0)),
            last_update=kubestatus.last_update(found),
            endpoint=status.get("endpoint")
            or (found.get("spec", {}).get("networking") or {}).get("endpoint", f"/{name}"),
            message=status.get("message") or None if state in _FAILED else None,
        )
        counts = self._metrics(name, pods)
        if counts is not None:
            row = probe.with_figures(row, counts)
        if not details:
            return row
        row = dataclasses.replace(row, sample=self._sample(found))
        multi_model = ((found.get("spec") or {}).get("predictor") or {}).get("models")
        described = self._description(pods) if multi_model else {}
        sections = (
            ("replicas", kubestatus.replicas(pods)),
            ("models", format.model_lines(described)),
            ("conditions", kubestatus.conditions(status)),
            ("events", tuple(self._events(name))),
        )
        return dataclasses.replace(row, sections=tuple((t, ls) for t, ls in sections if ls))

    def _sample(self, found: dict[str, Any]) -> samples.Sample | None:
        """The sample.json of the project the API runs, read from its archive's ConfigMap (for
        the curl example; ``-d @sample.json`` when run from the project folder)."""
        spec_project = (found.get("spec") or {}).get("project") or {}
        name = spec_project.get("configMap")
        if not name:
            return None
        try:
            config_map = self.kube.request("GET", self._core("configmaps", name)).json()
            archive = base64.b64decode(config_map["binaryData"][PROJECT_ARCHIVE_KEY])
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                member = tar.getmember(samples.FILE)
                if not member.isfile() or member.size > samples.MAX_BYTES:
                    return None
                data = tar.extractfile(member)
                return samples.parse(Path(samples.FILE), data.read() if data else b"")
        except (errors.CortexError, KeyError, ValueError, tarfile.TarError, OSError):
            return None  # no sample is only a less helpful example

    def _pods(self, name: str) -> list[dict[str, Any]]:
        selector = [("labelSelector", f"{contracts.LABEL_API_NAME}={name}")]
        items = self.kube.request("GET", self._core("pods"), query=selector).json()
        return sorted(items.get("items", []), key=lambda pod: pod["metadata"]["name"])

    def _metrics(self, name: str, pods: list[dict[str, Any]]) -> probe.RequestMetrics | None:
        """The API's request figures summed over its ready pods (through the pod proxy)."""
        totals: list[probe.RequestMetrics] = []
        for pod in pods:
            if not kubestatus.ready(pod):
                continue
            path = self._core("pods", f"{pod['metadata']['name']}:{labels.PORT}/proxy/metrics")
            try:
                response = self.kube.request("GET", path, timeout=3.0)
            except errors.CortexError:
                continue  # a pod that does not answer has no figures to add
            totals.append(probe.parse_metrics(response.body.decode(errors="replace"), name))
        return probe.combined(totals) if totals else None

    def _description(self, pods: list[dict[str, Any]]) -> dict[str, Any]:
        """What the first ready pod says of its API (a multi-model API lists its models: they
        are the cache of that pod, each pod holding its own)."""
        for pod in pods:
            if not kubestatus.ready(pod):
                continue
            path = self._core("pods", f"{pod['metadata']['name']}:{labels.PORT}/proxy/predict")
            try:
                body = self.kube.request("GET", path, timeout=3.0).json()
            except (errors.CortexError, ValueError):
                continue
            return body if isinstance(body, dict) else {}
        return {}

    def _events(self, name: str) -> list[str]:
        """The last Events of the API's resource, oldest first: ``type reason: message``."""
        selector = f"involvedObject.name={name},involvedObject.kind={contracts.KIND}"
        items = self.kube.request(
            "GET", self._core("events"), query=[("fieldSelector", selector)]
        ).json()
        events = sorted(items.get("items", []), key=kubestatus.event_time)[-_EVENTS_SHOWN:]
        return [
            f"{e.get('type', 'Normal')} {e.get('reason', '')}: {e.get('message', '')}"
            for e in events
        ]

    # -- logs, predict, delete ----------------------------------------------------------------

    def logs(
        self, name: str, follow: bool, pod: str | None = None
    ) -> Iterator[environment.LogLine]:
        self._must_exist(name)
        if not follow:
            return self._logs_once(name, pod)
        return self._logs_following(name, pod)

    def _logs_once(self, name: str, only: str | None) -> Iterator[environment.LogLine]:
        for pod in self._chosen_pods(name, only):
            pod_name = pod["metadata"]["name"]
            for line in self._pod_log(pod_name, follow=False):
                yield environment.LogLine(kubestatus.short(name, pod_name), line)

    def _logs_following(self, name: str, only: str | None) -> Iterator[environment.LogLine]:
        """Lines of every pod as they come, new pods included, until the API is deleted."""
        lines: queue.Queue[environment.LogLine | None] = queue.Queue()
        followed: set[str] = set()

        def follow(pod_name: str) -> None:
            try:
                for line in self._pod_log(pod_name, follow=True):
                    lines.put(environment.LogLine(kubestatus.short(name, pod_name), line))
            except errors.CortexError:
                pass  # the pod went away: its lines so far were shown

        def watch() -> None:
            while self._read(self._apis_path(name)) is not None:
                for pod in self._chosen_pods(name, only):
                    pod_name = pod["metadata"]["name"]
                    if pod_name not in followed and kubestatus.started(pod):
                        followed.add(pod_name)
                        threading.Thread(target=follow, args=(pod_name,), daemon=True).start()
                time.sleep(_POLL)
            lines.put(None)

        threading.Thread(target=watch, name="log-pods", daemon=True).start()
        while (item := lines.get()) is not None:
            yield item

    def _chosen_pods(self, name: str, only: str | None) -> list[dict[str, Any]]:
        pods = self._pods(name)
        if only is None:
            return pods
        chosen = [
            p
            for p in pods
            if only in (p["metadata"]["name"], kubestatus.short(name, p["metadata"]["name"]))
        ]
        if not chosen:
            shown = ", ".join(p["metadata"]["name"] for p in pods) or "none"
            raise errors.CortexError(f"api '{name}' has no pod '{only}' (pods: {shown})")
        return chosen

    def _pod_log(self, pod: str, follow: bool) -> Iterator[str]:
        query = [
            ("container", CONTAINER_NAME),
            ("follow", "true" if follow else "false"),
        ]
        path = self._core("pods", f"{pod}/log")
        for raw in self.kube.stream(path, query=query, timeout=None if follow else 30.0):
            yield raw.decode("utf-8", errors="replace")

    def predict(self, name: str, request: environment.Request) -> environment.Reply:
        found = self._must_exist(name)
        endpoint = str((found.get("status") or {}).get("endpoint") or f"/{name}")
        if endpoint.startswith(("http://", "https://")):  # a route with an address: try it
            reply = _post_direct(endpoint, request)
            if reply is not None:
                return reply
            endpoint = urllib.parse.urlsplit(endpoint).path or f"/{name}"
        path = self._core("services", f"{labels.child_name(name)}:{labels.PORT}/proxy{endpoint}")
        raw = self.kube.open(
            "POST",
            path,
            query=request.query,
            body=request.body,
            content_type=request.content_type,
            headers=dict(request.headers),
            timeout=300.0,
        )
        headers = {key.lower(): value for key, value in raw.headers.items()}
        kind = headers.get("content-type") or "application/octet-stream"
        if raw.status < 400 and "content-length" not in headers:  # streamed: print as it comes
            return environment.Reply(raw.status, kind, b"", _chunks(raw))
        try:
            response = kube.Response(raw.status, headers, raw.data)
        finally:
            raw.release_conn()
        if response.status >= 400 and _is_kube_status(response):  # the API server speaking
            message = response.json().get("message", "")
            raise errors.ClusterError(
                f"api '{name}' cannot be reached through the API server: {message}; see "
                f"`cortex get {name} -e {self.name}`"
            )
        return environment.Reply(response.status, kind, response.body)

    def delete(self, name: str, wait: bool = True) -> None:
        self._must_exist(name)
        self.kube.request("DELETE", self._apis_path(name), ok=(404,))
        if not wait:
            return
        deadline = time.monotonic() + DELETE_TIMEOUT
        while (
            self._read(self._deployment_path(name)) is not None
            or self._read(self._apis_path(name)) is not None
        ):
            if time.monotonic() > deadline:
                raise errors.ClusterError(
                    f"api '{name}' is still being deleted after {DELETE_TIMEOUT:g} s; see "
                    f"`kubectl get deployment {labels.child_name(name)} -n {self.namespace}`"
                )
            time.sleep(_POLL)

    # -- helpers ------------------------------------------------------------------------------

    def _read(self, path: str) -> dict[str, Any] | None:
        response = self.kube.request("GET", path, ok=(404,))
        if response.status == 404:
            if not _is_kube_status(response) or not response.json().get("details"):
                raise self.kube.error("GET", path, response)  # the resource type is unknown
            return None
        data: dict[str, Any] = response.json()
        return data

    def _must_exist(self, name: str) -> dict[str, Any]:
        found = self._read(self._apis_path(name))
        if found is None:
            raise environment.not_deployed(name, self.name, self.names())
        return found


def _managers(found: dict[str, Any]) -> list[str]:
    return sorted({f.get("manager", "") for f in found["metadata"].get("managedFields") or []})


def _managed_by_us(found: dict[str, Any]) -> bool:
    return FIELD_MANAGER in _managers(found)


def _served_spec_hash(found: dict[str, Any]) -> str | None:
    try:
        return spec_hash(parse_api_spec(found["metadata"]["name"], found.get("spec") or {}))
    except errors.CortexError:
        return None


def _token(found: dict[str, Any]) -> str:
    return json.dumps({"generation": found["metadata"].get("generation", 0)})


def _chunks(raw: urllib3.BaseHTTPResponse) -> Generator[bytes, None, None]:
    """A streamed answer's bytes as the API server passes them on; the connection is released
    when the stream ends or its reader closes it."""
    try:
        yield from raw.stream(4096, decode_content=True)
    finally:
        raw.release_conn()


def _post_direct(url: str, request: environment.Request) -> environment.Reply | None:
    """POST to the API's own address; None when it cannot be reached from here."""
    timeout = httpx.Timeout(300.0, connect=kube.CONNECT_TIMEOUT)
    try:
        return posting.post(url, request, {}, timeout)
    except httpx.TransportError:
        return None


def _is_kube_status(response: kube.Response) -> bool:
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("kind") == "Status"
