"""POSTs a prediction to an API's own address with httpx; a streamed answer is handed on as it
arrives, so ``cortex predict`` prints each chunk when the predictor yields it.

An answer without a declared length (chunked: a generator's stream, SSE or raw) is a stream;
every other answer is read whole.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping

import httpx

from cortex import errors
from cortex.cli import environment

__all__ = ["post"]


def post(
    url: str,
    request: environment.Request,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    *,
    trust_env: bool = True,
) -> environment.Reply:
    """POST ``request`` to ``url`` with ``headers`` (the request's own win); raises httpx's
    errors when the API cannot be reached."""
    sent = httpx.Headers({"content-type": request.content_type, **headers})
    sent.update(httpx.Headers(list(request.headers)))
    client = httpx.Client(timeout=timeout, trust_env=trust_env)
    try:
        asked = client.build_request(
            "POST", url, content=request.body, params=list(request.query), headers=sent
        )
        response = client.send(asked, stream=True)
    except BaseException:
        client.close()
        raise
    kind = response.headers.get("content-type", "application/octet-stream")
    if "content-length" in response.headers:
        try:
            body = response.read()
        finally:
            client.close()
        return environment.Reply(response.status_code, kind, body)
    return environment.Reply(response.status_code, kind, b"", _chunks(client, response, url))


def _chunks(
    client: httpx.Client, response: httpx.Response, url: str
) -> Generator[bytes, None, None]:
    try:
        yield from response.iter_bytes()
    except httpx.HTTPError as exc:
        raise errors.ClusterError(f"the stream from {url} broke off: {exc}") from None
    finally:
        response.close()
        client.close()
