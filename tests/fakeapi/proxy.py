"""The API server's proxies: ``/api/v1/namespaces/{ns}/services/{name}[:{port}]/proxy/...`` and
``.../pods/{name}[:{port}]/proxy/...`` (``FakeCluster.route_pod``; an unknown pod is a 404).

A cluster would send the request to one of the Service's endpoints; here a test names the
upstream (``FakeCluster.route_service``), e.g. a real runtime on 127.0.0.1. The id may be
``name``, ``name:port`` or ``scheme:name:port`` (port by name or number; none means the first
port), as ``kubectl`` and the client libraries build it. Without a route the answer is the
real server's 503 ``no endpoints available``; for an unknown Service, 404. The upstream's
answer is streamed back with its status and headers, hop-by-hop headers dropped both ways.
"""

from __future__ import annotations

import aiohttp
import aiohttp.web
import kmock

from tests.fakeapi.errors import ApiError, not_found
from tests.fakeapi.store import Obj, Store

SERVICES = kmock.resource("v1/services")
PODS = kmock.resource("v1/pods")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",  # of a request: aiohttp sets its own; a response's is kept (below)
}
Routes = dict[tuple[str, str, str], str]  # (namespace, service, port) -> upstream URL


def _split(service_id: str) -> tuple[str, str]:
    """``[scheme:]name[:port]`` -> (name, port), as the server's ``SplitSchemeNamePort``."""
    parts = service_id.split(":")
    if len(parts) == 3:
        return parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    return parts[0], ""


def _pod_upstream(store: Store, routes: Routes, namespace: str, pod_id: str) -> str:
    name, port = _split(pod_id)
    if store.find(store.kind(PODS), namespace, name) is None:
        raise not_found("pods", name)
    url = routes.get((namespace, f"pods/{name}", port))
    if not url:
        raise ApiError(503, "ServiceUnavailable", f'error trying to reach pod "{name}"')
    return url


def _upstream(store: Store, routes: Routes, namespace: str, service_id: str) -> str:
    name, port = _split(service_id)
    service = store.find(store.kind(SERVICES), namespace, name)
    if service is None:
        raise not_found("services", name)
    ports: list[Obj] = (service.get("spec") or {}).get("ports") or []
    chosen = next(
        (p for p in ports if port in ("", p.get("name"), str(p.get("port")))),
        None,
    )
    candidates = [port] if chosen is None else [str(chosen.get("port")), chosen.get("name")]
    for candidate in [*candidates, port]:
        url = routes.get((namespace, name, str(candidate)))
        if url:
            return url
    raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')


async def forward(
    store: Store, routes: Routes, request: kmock.Request, plural: str = "services"
) -> aiohttp.web.StreamResponse:
    raw = request._raw_request
    assert raw is not None and request.name is not None
    find = _pod_upstream if plural == "pods" else _upstream
    base = find(store, routes, request.namespace or "", request.name)
    # clients percent-encode the id and the path (the Python client even its slashes)
    tail = raw.path.split(f"/{plural}/{request.name}/proxy", 1)[-1]
    url = base.rstrip("/") + (tail or "/")
    if raw.query_string:
        url += "?" + raw.query_string
    headers = {
        k: v
        for k, v in raw.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() != "authorization"
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        try:
            upstream = await session.request(
                raw.method, url, headers=headers, data=request.body, allow_redirects=False
            )
        except aiohttp.ClientError as exc:
            raise ApiError(
                503, "ServiceUnavailable", f"error trying to reach service: {exc}"
            ) from None
        async with upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            # Content-Length is end to end (Go's ReverseProxy, which the API server's proxy is,
            # keeps it); an answer without one (a stream) goes on chunked, as it came.
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(raw)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                pass
            return response
