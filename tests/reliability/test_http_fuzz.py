"""Fuzzed HTTP against a runtime whose predictor echoes its payload (tests/fixtures/echo.py):
bodies, content types, charsets, multipart (valid and broken), headers, methods and paths.

Whatever arrives: never a 5xx (the echo never raises, so a 500 could only come from parsing),
never a hang, every error a JSON body with ``error`` and ``request_id``. Most examples go to
one long-lived runtime in process (ASGI, fast); a smaller round goes to a real process over
sockets, also with heads no HTTP client would send.
"""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex.contracts import Flag
from tests.conftest import serving
from tests.reliability.conftest import Figures
from tests.runtime import rawhttp
from tests.runtime.harness import RuntimeProcess, write_spec

Size = Callable[[Any, Any], Any]
Request = dict[str, Any]  # keyword arguments of httpx's request()
NOT_HTTP = "the request is not valid HTTP"  # e.g. a method llhttp does not know
HANG = 20.0  # seconds an answer may take before the case counts as a hang

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
CHARSETS = [
    *("utf-8", "UTF-8", "latin-1", "iso-8859-1", "ascii", "utf-16", "utf-32", "cp1252"),
    *("shift_jis", "utf-7", "unicode_escape", "base64", "rot13", "idna", "klingon", ""),
]
MEDIA = [
    *("application/json", "application/ld+json", "text/plain", "multipart/form-data"),
    *("application/x-www-form-urlencoded", "application/octet-stream", "image/png", ""),
]
PATHS = ["/predict", "/", "/healthz", "/readyz", "/metrics", "/docs"]
METHODS = ["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-type"}

PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/"

tokens = st.text(TOKEN, min_size=1, max_size=20)
header_values = st.text(string.printable.strip("\r\n\x0b\x0c"), max_size=300).map(str.strip)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


def content_types() -> st.SearchStrategy[str]:
    charset = st.sampled_from(CHARSETS).map(lambda c: f"; charset={c}" if c else "")
    boundary = st.one_of(st.just(""), tokens.map(lambda b: f"; boundary={b}"))
    media = st.one_of(st.sampled_from(MEDIA), tokens.map(lambda t: f"{t}/{t}"), header_values)
    return st.builds(lambda m, c, b: m + c + b, media, charset, boundary)


@st.composite
def multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    """A multipart/form-data body, valid or broken (cut, wrong or missing boundary)."""
    boundary = draw(tokens)
    parts = []
    for name, value, filename in draw(
        st.lists(st.tuples(tokens, st.binary(max_size=200), st.none() | tokens), max_size=4)
    ):
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\ncontent-disposition: {disposition}\r\n\r\n"
        parts.append(head.encode() + value + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    declared = f"multipart/form-data; boundary={boundary}"
    breakage = draw(st.sampled_from(["none", "cut", "other boundary", "no boundary", "garbage"]))
    if breakage == "cut":
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    elif breakage == "other boundary":
        declared = f"multipart/form-data; boundary={draw(tokens)}"
    elif breakage == "no boundary":
        declared = "multipart/form-data"
    elif breakage == "garbage":
        body = draw(st.binary(max_size=500))
    return declared, body


@st.composite
def text_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """Text in a charset, or in UTF-8 when Python cannot encode to it (base64, klingon)."""
    charset, text = draw(st.sampled_from(CHARSETS)), draw(st.text(max_size=200))
    try:
        body = text.encode(charset or "utf-8", "ignore")
    except (LookupError, UnicodeError):
        body = text.encode()
    return f"text/plain; charset={charset}" if charset else "text/plain", body


def bodies() -> st.SearchStrategy[tuple[str, bytes]]:
    """(Content-Type, body) pairs: well-formed for their type or not."""
    as_json = json_values.map(lambda v: ("application/json", orjson.dumps(v)))
    form = st.dictionaries(tokens, st.text(max_size=50), max_size=5).map(
        lambda d: ("application/x-www-form-urlencoded", str(httpx.QueryParams(d)).encode())
    )
    anything = st.tuples(content_types(), st.binary(max_size=2000))
    texts, forms = text_bodies(), multipart()
    return st.one_of(as_json, texts, texts, form, forms, forms, anything)  # weights by repeats


def slash(path: str) -> str:
    return "/" + path


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """Three in four are predictions (their bodies are parsed); the others go anywhere."""
    method, path = "POST", "/predict"
    if draw(st.integers(0, 3)) == 0:
        method = draw(st.one_of(st.sampled_from(METHODS), tokens.map(str.upper)))
        path = draw(st.one_of(st.sampled_from(PATHS), st.text(PATH_CHARS, max_size=40).map(slash)))
    query = draw(st.dictionaries(tokens, st.text(max_size=20), max_size=3))
    headers = {
        name: value
        for name, value in draw(st.dictionaries(tokens, header_values, max_size=6)).items()
        if name.lower() not in RESERVED_HEADERS
    }
    if draw(st.booleans()):
        headers["x-request-id"] = draw(header_values)
    content_type, body = draw(bodies())
    if content_type:
        headers["content-type"] = content_type
    return {"method": method, "url": path, "params": query, "headers": headers, "content": body}


def check(request: Request, r: httpx.Response) -> None:
    """The answer to any request: no 5xx, errors in the JSON shape with the request's id."""
    status, what = r.status_code, f"{request['method']} {request['url']}"
    assert status < 500, f"{what} -> {status}: {r.text[:500]}"
    if status < 400 or request["method"] == "HEAD":
        return
    body = json.loads(r.content)
    assert set(body) >= {"error", "request_id"}, f"{what} -> {status}: {body}"
    assert body["request_id"] == r.headers["x-request-id"]
    sent = request["headers"].get("x-request-id")
    if sent and body["error"] != NOT_HTTP:  # refused before its headers were read
        assert body["request_id"] == sent[:200]


@contextmanager
def in_process() -> Iterator[Callable[[Request], httpx.Response]]:
    """The echo runtime in process, on an event loop in a thread: a call that does not answer
    within HANG seconds fails as a hang."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serving("echo.py")) as client,
    ):

        def call(request: Request) -> httpx.Response:
            future = portal.start_task_soon(functools.partial(client.request, **request))
            return future.result(timeout=HANG)

        yield call


def test_fuzzed_requests_in_process_never_get_a_5xx(size: Size, figures: Figures) -> None:
    examples = size(800, 10_000)
    seen: list[int] = []
    with in_process() as call:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests())
        def case(request: Request) -> None:
            r = call(request)
            seen.append(r.status_code)
            check(request, r)

        case()
    figures.record(
        "fuzzed requests (in process)",
        sent=len(seen),
        lost=sum(s >= 500 for s in seen),
        statuses=sorted(set(seen)),
    )


def test_valid_json_reaches_predict_intact_and_any_multipart_is_200_or_400(size: Size) -> None:
    with in_process() as call:

        @settings(max_examples=size(100, 1_000), deadline=None)
        @given(json_values, multipart())
        def case(value: Any, form: tuple[str, bytes]) -> None:
            sent = {"method": "POST", "url": "/predict", "content": orjson.dumps(value)}
            r = call({**sent, "headers": {"content-type": "application/json"}})
            assert r.status_code == 200 and r.json()["payload"] == value
            content_type, body = form
            headers = {"content-type": content_type}
            r = call({"method": "POST", "url": "/predict", "content": body, "headers": headers})
            assert r.status_code in (200, 400), r.text
            assert r.json()["type" if r.status_code == 200 else "error"]

        case()


@st.composite
def raw_heads(draw: st.DrawFn) -> bytes:
    """A request head as bytes no client library would write: any method, target and
    header bytes (never a body length: a body that never comes is another limit's case)."""
    method = draw(st.one_of(st.sampled_from(METHODS), st.binary(min_size=1, max_size=10)))
    target = draw(st.one_of(st.sampled_from(PATHS), st.binary(min_size=1, max_size=100)))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]))
    lines = [method if isinstance(method, bytes) else method.encode()]
    lines[0] += b" " + (target if isinstance(target, bytes) else target.encode()) + b" " + version
    for name, value in draw(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=50)))):
        if b"length" not in name.lower() and b"encoding" not in name.lower():
            lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_fuzzed_requests_to_a_process_never_get_a_5xx_or_hang(
    tmp_path: Path, size: Size, figures: Figures
) -> None:
    spec = write_spec(tmp_path, "echo.py")
    seen: list[int | None] = []
    with (
        RuntimeProcess(spec, Flag.HEADER_TIMEOUT, "1") as rt,
        httpx.Client(base_url=rt.base, timeout=HANG) as client,
    ):

        @settings(max_examples=size(80, 1_000), deadline=None)
        @given(requests())
        def through_a_client(request: Request) -> None:
            r = client.request(**request)
            seen.append(r.status_code)
            check(request, r)

        @settings(max_examples=size(80, 1_000), deadline=None)
        @given(raw_heads())
        def raw(head: bytes) -> None:
            with rawhttp.connect(rt.port, timeout=HANG) as sock:
                rawhttp.send(sock, head)
                # A TimeoutError here is a hang; a HEAD's answer has no body to read.
                with_body = not head.startswith(b"HEAD ")
                answer = rawhttp.read_answer(sock, body=with_body)
            seen.append(answer.status if answer else None)
            if answer is not None:
                assert answer.status < 500, (head[:200], answer)
                if answer.status >= 400 and with_body:
                    assert set(answer.json()) >= {"error", "request_id"}, (head[:200], answer)

        through_a_client()
        raw()
        alive = rt.post(json={"after": "fuzz"}).status_code
    figures.record(
        "fuzzed requests (real sockets)",
        sent=len(seen),
        lost=sum(s is not None and s >= 500 for s in seen),
        closed=seen.count(None),
    )
    assert alive == 200
