"""The CLI's line to a Kubernetes API server: the kubeconfig's credentials, JSON over HTTP.

``connect`` loads a kubeconfig context with the ``kubernetes`` client (tokens, client
certificates, exec plugins, ``KUBECONFIG`` with several files as kubectl reads it), and
``Kube.request`` sends one request through that client's connection pool. Every failure becomes
one :class:`cortex.errors.ClusterError` line that says what was refused and what to do: an
unreachable server (after a few seconds, naming it), 401, 403 (the verb, the resource, the role
that grants it), the cortex resource type not installed, and the server's own message with its
field paths for a rejected object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from cortex import contracts, errors

__all__ = [
    "CONNECT_TIMEOUT",
    "Kube",
    "Response",
    "check_context",
    "connect",
    "kubeconfig_paths",
]

CONNECT_TIMEOUT = 4.0
READ_TIMEOUT = 30.0
USER_ROLE = "cortex-user"  # the ClusterRole in the Helm chart that grants what the CLI does
_INSTALL = (
    "install the operator first: `helm install cortex deploy/helm/cortex` or "
    "`kubectl apply -k operator/`"
)

JSON = "application/json"
APPLY = "application/apply-patch+yaml"  # server-side apply (a JSON body is valid YAML)


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """The kubeconfig files kubectl would read: ``explicit``, else ``$KUBECONFIG``, else
    ``~/.kube/config``."""
    if explicit:
        return [os.path.expanduser(explicit)]
    value = os.environ.get("KUBECONFIG")
    if value:
        return [path for path in value.split(os.pathsep) if path]
    return [os.path.expanduser("~/.kube/config")]


@dataclass(frozen=True)
class Response:
    """A finished response: status code, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Kube:
    """One kube context: ``request`` JSON in and out, ``stream`` for logs and watches."""

    def __init__(self, api: k8s_client.ApiClient, context: str, namespace: str) -> None:
        self.api = api
        self.context = context
        self.namespace = namespace
        self.server = str(api.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = JSON,
        headers: Mapping[str, str] | None = None,
        timeout: float = READ_TIMEOUT,
        ok: Sequence[int] = (),
    ) -> Response:
        """Send one request and read its answer; a status >= 400 not in ``ok`` raises a
        ClusterError. ``headers`` are passed on (through a proxy path: to the pod) and win over
        the defaults."""
        raw = self.open(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            headers=headers,
            timeout=timeout,
        )
        try:
            response = Response(raw.status, dict(raw.headers), raw.data)
        finally:
            raw.release_conn()
        if response.status >= 400 and response.status not in ok:
            raise self.error(method, path, response)
        return response

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = JSON,
        headers: Mapping[str, str] | None = None,
        timeout: float = READ_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request and return its response unread, whatever its status: the caller
        reads (or streams) it and releases the connection (``release_conn``)."""
        return self._send(method, path, query, body, content_type, timeout, True, headers)

    def stream(
        self, path: str, *, query: Sequence[tuple[str, Any]] = (), timeout: float | None = None
    ) -> Iterator[bytes]:
        """The lines of a streamed GET (pod logs with follow); ends when the server ends it."""
        raw = self._send("GET", path, query, None, JSON, timeout, True)
        try:
            if raw.status >= 400:
                raise self.error("GET", path, Response(raw.status, dict(raw.headers), raw.data))
            pending = b""
            for chunk in raw.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
            if pending:
                yield pending
        finally:
            raw.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        body: Any,
        content_type: str,
        timeout: float | None,
        stream: bool,
        extra: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        for name, value in (extra or {}).items():  # one spelling of each name: the caller's
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = value
        if isinstance(body, dict | list):
            body = json.dumps(body)
        _, url, headers, _, _ = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        pool = self.api.rest_client.pool_manager
        try:
            return pool.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=timeout),
                preload_content=not stream,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise errors.ClusterError(
                f"cannot reach the API server {self.server} of context '{self.context}': "
                f"{_reason(exc)}; check the cluster is up and the kubeconfig points at it"
            ) from None

    def error(self, method: str, path: str, response: Response) -> errors.ClusterError:
        """The one-line error for a failed response (what ``request`` raises)."""
        status = _status(response)
        message = str(status.get("message") or response.body[:300].decode(errors="replace"))
        code = response.status
        if code == 401:
            return errors.ClusterError(
                f"the API server {self.server} refused the credentials of context "
                f"'{self.context}' (401 Unauthorized); log in to the cluster again"
            )
        if code == 403:
            return errors.ClusterError(
                f"not allowed: {message} (403 Forbidden); ask a cluster admin to bind you the "
                f"'{USER_ROLE}' ClusterRole of the cortex Helm chart in namespace "
                f"'{self.namespace}'"
            )
        if code == 404 and path.startswith(f"/apis/{contracts.GROUP}/") and not _details(status):
            return errors.ClusterError(
                f"the cluster of context '{self.context}' does not know {contracts.KIND} "
                f"resources ({contracts.CRD_NAME}); {_INSTALL}"
            )
        if code == 422:
            causes = _details(status).get("causes") or []
            fields = "; ".join(
                f"{c.get('field')}: {c.get('message')}" for c in causes if c.get("field")
            )
            detail = fields or message
            return errors.ClusterError(f"the API server rejected it: {detail}")
        return errors.ClusterError(
            f"{method} {path} failed: {message} ({code} {status.get('reason') or ''})".rstrip()
        )


def check_context(kubeconfig: str | None, context: str) -> str:
    """The default namespace of ``context``; ClusterError when the kubeconfig or the context is
    missing (what ``cortex env configure`` checks before it records an environment)."""
    paths = kubeconfig_paths(kubeconfig)
    existing = os.pathsep.join(path for path in paths if os.path.isfile(path))
    shown = os.pathsep.join(paths)
    if not existing:
        raise errors.ClusterError(
            f"no kubeconfig at {shown}; pass --kubeconfig to `cortex env configure` or set "
            "KUBECONFIG"
        )
    try:
        contexts, _ = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=existing
        )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise errors.ClusterError(f"cannot read the kubeconfig {shown}: {exc}") from None
    names = [str(item.get("name")) for item in contexts or []]
    chosen = next((item for item in contexts or [] if item.get("name") == context), None)
    if chosen is None:
        raise errors.ClusterError(
            f"context '{context}' is not in the kubeconfig {shown} (contexts: "
            f"{', '.join(names) or 'none'}); choose one with `cortex env configure NAME "
            "--kube-context CONTEXT`"
        )
    return str((chosen.get("context") or {}).get("namespace") or "default")


def connect(kubeconfig: str | None, context: str, namespace: str | None) -> Kube:
    """The API server of ``context`` (nothing is sent yet); ClusterError when the kubeconfig or
    the context is missing or unusable."""
    default = check_context(kubeconfig, context)
    paths = [path for path in kubeconfig_paths(kubeconfig) if os.path.isfile(path)]
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(paths),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise errors.ClusterError(f"context '{context}' cannot be used: {exc}") from None
    return Kube(k8s_client.ApiClient(configuration), context, namespace or default)


def _status(response: Response) -> dict[str, Any]:
    try:
        data = json.loads(response.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _details(status: Mapping[str, Any]) -> dict[str, Any]:
    details = status.get("details")
    return details if isinstance(details, dict) else {}


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    # Checked after: urllib3's NewConnectionError is a ConnectTimeoutError too.
    if "timed out" in text or isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    return text.split(": ", 1)[-1]
