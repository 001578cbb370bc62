"""The prediction route through HTTP: payloads by content type, results by return type, errors."""

from __future__ import annotations

import asyncio
import gc

import pytest

from cortex.runtime import Limits, logs
from tests.conftest import serving

pytestmark = pytest.mark.anyio


async def test_json_payload_is_parsed() -> None:
    async with serving("echo.py") as client:
        r = await client.post("/predict", json={"text": "hi", "n": [1, 2]})
    assert r.status_code == 200
    assert r.json()["type"] == "dict"
    assert r.json()["payload"] == {"text": "hi", "n": [1, 2]}


async def test_endpoint_route_serves_predictions_like_predict() -> None:
    async with serving("echo.py", networking={"endpoint": "/my-api"}) as client:
        r = await client.post("/my-api", json=[1, 2, 3])
    assert r.status_code == 200
    assert r.json()["payload"] == [1, 2, 3]


async def test_behind_a_route_any_path_but_the_runtimes_own_is_the_prediction() -> None:
    async with serving("echo.py", any_path=True) as client:
        predicted = await client.post("/v1/chosen/by/the-route", json=[1])
        described = await client.get("/v1/chosen/by/the-route")
        health = await client.post("/healthz")
        ready = await client.get("/readyz")
    assert predicted.status_code == 200 and predicted.json()["payload"] == [1]
    assert described.json()["endpoint"] == "/v1/chosen/by/the-route"
    assert health.status_code == 405  # the runtime's own routes stay its own
    assert ready.status_code == 200


async def test_without_any_path_other_paths_are_404() -> None:
    async with serving("echo.py") as client:
        r = await client.post("/v1/elsewhere", json=[1])
    assert r.status_code == 404


async def test_text_payload_is_a_str_with_its_charset() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict",
            content="café".encode("latin-1"),
            headers={"content-type": "text/plain; charset=latin-1"},
        )
    assert (r.json()["type"], r.json()["payload"]) == ("str", "café")


async def test_text_payload_defaults_to_utf8() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", content="naïve ✓".encode(), headers={"content-type": "text/plain"}
        )
    assert r.json()["payload"] == "naïve ✓"


async def test_form_payload_is_form_data() -> None:
    async with serving("echo.py") as client:
        r = await client.post("/predict", data={"a": "1", "b": "two"})
    assert r.json()["type"] == "FormData"
    assert r.json()["payload"] == {"a": "1", "b": "two"}


async def test_multipart_payload_carries_files() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", data={"field": "x"}, files={"image": ("cat.png", b"\x89PNG", "image/png")}
        )
    assert r.json()["type"] == "FormData"
    assert r.json()["payload"] == {"field": "x", "image": "cat.png"}


async def test_every_file_of_a_repeated_field_is_closed_after_the_request() -> None:
    """Found by tests/reliability/test_http_fuzz.py: only the last file of a field name was
    closed; the others waited for the garbage collector (a ResourceWarning, an error here)."""
    files = [("image", ("a.png", b"a", "image/png")), ("image", ("b.png", b"b", "image/png"))]
    async with serving("echo.py") as client:
        r = await client.post("/predict", files=files)
        gc.collect()
    assert r.status_code == 200 and r.json()["payload"] == {"image": "b.png"}


MALFORMED_FORMS = [
    ("multipart/form-data", bytes(range(256)) * 8),  # random bytes, no boundary parameter
    ("multipart/form-data; boundary=xyz", bytes(range(256)) * 8),  # no such boundary in it
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data"),  # cut
    ("multipart/form-data; boundary=", b"--\r\n\r\n"),  # an empty boundary
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: x; name="a\r\n\r\n'),
    ("application/x-www-form-urlencoded", b"%zz=%%&\xff\xfe=1"),
]


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_FORMS)
async def test_a_malformed_form_is_400_with_the_json_error(content_type: str, body: bytes) -> None:
    async with serving("echo.py") as client:
        r = await client.post("/predict", content=body, headers={"content-type": content_type})
        after = await client.post("/predict", json=[1])
    assert r.status_code in (200, 400), r.text  # lenient parsers may make a form of it
    if r.status_code == 400:
        assert r.json()["error"].startswith("the body is not valid")
        assert r.json()["request_id"]
    assert after.status_code == 200


async def test_a_multipart_body_cut_before_its_last_boundary_is_400() -> None:
    """Found by tests/reliability/test_http_fuzz.py: the parser made a form of the parts before
    the cut (a 200 without the cut upload) and left the upload's temporary file open."""
    whole = (
        b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n'
        b"file bytes\r\n--xyz--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    async with serving("echo.py") as client:
        cut = await client.post("/predict", content=whole[:-12], headers=headers)
        full = await client.post("/predict", content=whole, headers=headers)
        gc.collect()
    assert cut.status_code == 400
    assert cut.json()["error"] == (
        "the body is not valid multipart/form-data: it ends before its last boundary"
    )
    assert full.json()["payload"] == {"a": "1", "f": "f.bin"}


async def test_other_content_types_are_raw_bytes() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", content=b"\x00\xffraw", headers={"content-type": "image/jpeg"}
        )
    assert r.json()["type"] == "bytes"
    assert r.json()["payload"] == {"base64": "AP9yYXc="}


async def test_query_params_headers_and_config_reach_predict() -> None:
    async with serving("echo.py", predictor={"config": {"model": "tiny"}}) as client:
        r = await client.post("/predict?top_k=3&lang=en", json={}, headers={"x-custom": "yes"})
    body = r.json()
    assert body["query"] == {"top_k": "3", "lang": "en"}
    assert body["header"] == "yes"
    assert body["config"] == {"model": "tiny"}


async def test_bad_json_is_400_with_json_error() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", content=b'{"text": ', headers={"content-type": "application/json"}
        )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert "not valid JSON" in r.json()["error"]
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_bad_text_encoding_is_400() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict",
            content=b"\xff\xfe\xfa",
            headers={"content-type": "text/plain; charset=utf-8"},
        )
    assert r.status_code == 400
    assert "not valid utf-8 text" in r.json()["error"]


async def test_unknown_charset_is_400() -> None:
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", content=b"x", headers={"content-type": "text/plain; charset=klingon"}
        )
    assert r.status_code == 400
    assert "klingon" in r.json()["error"]


@pytest.mark.parametrize(
    ("charset", "body", "error"),
    [
        ("base64", b"YWJj", "charset 'base64' in Content-Type is not a text encoding"),
        ("rot13", b"abc", "charset 'rot13' in Content-Type is not a text encoding"),
        ("idna", b"xn--a", "the body is not valid idna text: "),
        ("unicode_escape", b"\\ud800", "the body is not valid unicode_escape text: it decodes"),
        ("utf-7", b"+2D0-", "the body is not valid utf-7 text: it decodes to lone surrogates"),
    ],
)
async def test_a_charset_python_knows_but_no_text_can_be_is_400(
    charset: str, body: bytes, error: str
) -> None:
    """These were 500s (a LookupError or UnicodeError escaped), or handed predict a str
    with lone surrogates that no JSON can carry."""
    async with serving("echo.py") as client:
        r = await client.post(
            "/predict", content=body, headers={"content-type": f"text/plain; charset={charset}"}
        )
    assert r.status_code == 400
    assert r.json()["error"].startswith(error)


async def test_body_over_the_limit_is_413() -> None:
    async with serving("echo.py", limits=Limits(max_body_bytes=100)) as client:
        small = await client.post("/predict", json={"x": "a" * 50})
        big = await client.post("/predict", json={"x": "a" * 200})
    assert small.status_code == 200
    assert big.status_code == 413
    assert "100 bytes" in big.json()["error"]


async def test_chunked_body_over_the_limit_is_413() -> None:
    async def chunks():  # no content-length: the runtime must count while reading
        for _ in range(10):
            yield b"x" * 50

    async with serving("echo.py", limits=Limits(max_body_bytes=100)) as client:
        r = await client.post("/predict", content=chunks(), headers={"content-type": "text/plain"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("kind", "content_type", "content"),
    [
        ("bytes", "application/octet-stream", b"\x00\x01binary"),
        ("str", "text/plain; charset=utf-8", "plain text ✓".encode()),
        ("dict", "application/json", b'{"label":"positive","score":0.9}'),
        ("list", "application/json", b"[1,2,3]"),
        ("none", "application/json", b"null"),
        ("numpy", "application/json", b'{"array":[0.0,1.0,2.0],"scalar":7}'),
        ("torch", "application/json", b'{"tensor":[[1.0,2.0]],"scalar":3}'),
    ],
)
async def test_return_type_sets_the_response_type(
    kind: str, content_type: str, content: bytes
) -> None:
    if kind in ("numpy", "torch"):
        pytest.importorskip(kind, reason=f"{kind} is not installed: its values cannot be tested")
    async with serving("returns.py") as client:
        r = await client.post(f"/predict?kind={kind}", json={})
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.content == content


async def test_returned_json_response_passes_through_with_its_status() -> None:
    async with serving("returns.py") as client:
        r = await client.post("/predict?kind=json_response", json={})
    assert r.status_code == 400
    assert r.json() == {"error": "unknown model"}


async def test_returned_response_keeps_its_status_and_headers() -> None:
    async with serving("returns.py") as client:
        r = await client.post("/predict?kind=response", json={})
    assert r.status_code == 201
    assert r.text == "created"
    assert r.headers["x-mine"] == "yes"
    assert r.headers["x-request-id"]


async def test_unserialisable_result_is_500() -> None:
    async with serving("returns.py") as client:
        r = await client.post("/predict?kind=object", json={})
    assert r.status_code == 500
    assert "cannot be sent as JSON" in r.json()["error"]


async def test_exception_in_predict_is_500_and_the_server_keeps_serving(caplog) -> None:
    async with serving("returns.py") as client:
        bad = await client.post("/predict?kind=raise", json={}, headers={"x-request-id": "req-42"})
        good = await client.post("/predict?kind=dict", json={})
    assert bad.status_code == 500
    assert bad.json() == {
        "error": "ValueError: the model refused this input",
        "request_id": "req-42",
    }
    assert good.status_code == 200
    record = next(r for r in caplog.records if "predict failed" in r.getMessage())
    # The traceback goes to the log, not to the client; its message only at log level debug.
    assert "Traceback (most recent call last)" in record.traceback
    assert record.traceback.splitlines()[-1] == f"ValueError {logs.WITHHELD}"
    assert "refused this input" not in record.getMessage()


async def test_request_id_is_taken_from_the_request_or_generated() -> None:
    async with serving("echo.py") as client:
        given = await client.post("/predict", json={}, headers={"x-request-id": "abc-123"})
        made = await client.post("/predict", json={})
        other = await client.get("/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert other.status_code == 200


ROUTES = [
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/v2/health/live", 200),
    ("GET", "/v2/health/ready", 200),
    ("GET", "/metrics", 200),
    ("GET", "/echo", 200),
    ("GET", "/predict", 200),
    ("GET", "/docs", 200),
    ("GET", "/openapi.json", 200),
    ("POST", "/echo", 200),
    ("GET", "/nope", 404),
    ("POST", "/healthz", 405),
]


@pytest.mark.parametrize(("method", "path", "status"), ROUTES)
async def test_every_response_carries_the_request_id_it_was_given(
    method: str, path: str, status: int
) -> None:
    async with serving("echo.py", networking={"endpoint": "/echo"}) as client:
        r = await client.request(method, path, json={}, headers={"x-request-id": "rid-42"})
    assert r.status_code == status
    assert r.headers["x-request-id"] == "rid-42"


@pytest.mark.parametrize(("method", "path", "status"), ROUTES)
async def test_every_response_gets_a_new_request_id_when_the_request_has_none(
    method: str, path: str, status: int
) -> None:
    async with serving("echo.py", networking={"endpoint": "/echo"}) as client:
        first = await client.request(method, path, json={})
        second = await client.request(method, path, json={})
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert [len(rid) for rid in ids] == [32, 32]
    assert ids[0] != ids[1]
    assert first.headers.get_list("x-request-id") == [ids[0]]  # once, not appended twice


async def test_a_long_request_id_is_truncated_to_200_characters_on_every_route() -> None:
    async with serving("echo.py") as client:
        health = await client.get("/healthz", headers={"x-request-id": "r" * 500})
        predict = await client.post("/predict", json={}, headers={"x-request-id": "r" * 500})
    assert health.headers["x-request-id"] == predict.headers["x-request-id"] == "r" * 200


async def test_unknown_route_is_a_404_in_the_json_error_shape() -> None:
    async with serving("echo.py", networking={"endpoint": "/echo"}) as client:
        r = await client.get("/nope", headers={"x-request-id": "rid-1"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "error": "no route GET /nope; predictions go to POST /echo",
        "request_id": "rid-1",
    }


async def test_wrong_method_is_a_405_in_the_json_error_shape_with_allow() -> None:
    async with serving("echo.py") as client:
        r = await client.post("/healthz", headers={"x-request-id": "rid-2"})
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.json() == {
        "error": "method POST is not allowed on /healthz (allowed: GET)",
        "request_id": "rid-2",
    }


async def test_predictor_with_only_payload() -> None:
    async with serving("payload_only.py", predictor={"config": {"factor": 3}}) as client:
        r = await client.post("/predict", json={"x": 5})
    assert r.json() == {"doubled": 15}


async def test_predictor_with_no_arguments_ignores_the_body() -> None:
    async with serving("no_args.py") as client:
        r = await client.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert r.status_code == 200
    assert r.text == "pong"


async def test_async_predict_runs_on_the_event_loop() -> None:
    async with serving("async_predictor.py") as client:
        results = await asyncio.gather(*(client.post("/predict", json={"i": i}) for i in range(20)))
    assert [r.json()["echo"] for r in results] == [{"i": i} for i in range(20)]
    assert {r.json()["thread"] for r in results} == {"MainThread"}


async def test_sync_predict_runs_off_the_event_loop_on_the_init_thread() -> None:
    async with serving("thread_name.py") as client:
        r = await client.post("/predict")
    assert r.json()["predict"] != "MainThread"
    assert r.json()["predict"] == r.json()["init"]


async def test_post_predict_runs_after_the_response_with_its_arguments() -> None:
    async with serving("post_predict.py") as client:
        r = await client.post("/predict", json={"n": 7})
        predictor = client.runtime.predictor
        assert predictor.done.wait(5)
    assert r.json() == {"n": 7}
    assert predictor.seen == [({"n": 7}, {"n": 7})]


async def test_post_predict_does_not_run_after_predict_failed() -> None:
    async with serving("post_predict.py") as client:
        failed = await client.post("/predict", json={"fail": True})
        fine = await client.post("/predict", json={"n": 1})
        predictor = client.runtime.predictor
        assert predictor.done.wait(5)  # one thread: a hook of the failed call would come first
    assert (failed.status_code, fine.status_code) == (500, 200)
    assert predictor.seen == [({"n": 1}, {"n": 1})]


async def test_get_on_the_endpoint_describes_the_api() -> None:
    async with serving("echo.py", networking={"endpoint": "/echo"}) as client:
        r = await client.get("/echo")
    assert r.status_code == 200
    assert r.json()["name"] == "test-api"
    assert "POST" in r.json()["message"]


async def test_health_routes_answer_when_ready() -> None:
    async with serving("echo.py") as client:
        codes = [
            (await client.get(p)).status_code
            for p in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")
        ]
    assert codes == [200, 200, 200, 200]


async def test_metrics_count_requests_by_status_class() -> None:
    async with serving("returns.py") as client:
        await client.post("/predict?kind=dict", json={})
        await client.post("/predict?kind=dict", json={})
        await client.post("/predict?kind=raise", json={})
        text = (await client.get("/metrics")).text
    assert 'cortex_requests_total{api_name="test-api",status_code="2XX"} 2.0' in text
    assert 'cortex_requests_total{api_name="test-api",status_code="5XX"} 1.0' in text
    assert 'cortex_request_duration_seconds_count{api_name="test-api"} 3.0' in text
    assert 'cortex_in_flight_requests{api_name="test-api"} 0.0' in text
    assert "cortex_predictor_load_seconds" in text


async def test_openapi_lists_the_prediction_route_and_its_answers() -> None:
    async with serving("echo.py", networking={"endpoint": "/echo"}) as client:
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    for path in ("/echo", "/predict"):
        post = schema["paths"][path]["post"]
        assert set(post["requestBody"]["content"]) == {
            "application/json",
            "text/plain",
            "multipart/form-data",
            "application/octet-stream",
        }
        assert {"200", "400", "413", "500", "503"} <= set(post["responses"])
    assert "get" in schema["paths"]["/echo"]  # the description route is still there
    assert docs.status_code == 200
