"""The prediction route as a plain ASGI handler: read, admit, parse, predict, answer, count.

It reads the body itself and skips FastAPI's dependency and validation machinery, which costs
more than a trivial predictor does. The body is read first, within the body timeout (408
after), and only then is the request admitted: a client that never finishes its body holds a
connection, never a slot. Admission is replica-wide (counts shared by the worker processes,
:mod:`cortex.runtime.sharedmem`): beyond ``max_replica_concurrency`` the answer is 503 with
Retry-After at once, without touching the predictor. A prediction that has not answered by
``networking.timeout`` (from the request's arrival) is answered 504 and its slot freed; one
whose client leaves is cancelled (:mod:`cortex.runtime.deadlines`). A streamed response that
has started is never cut.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, cast

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, QueryParams, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from cortex.runtime import codec, deadlines, logs, modelclient, predictor, responses, streaming
from cortex.runtime.process import ProcessState
from cortex.spec import format_duration

log = logging.getLogger("cortex.runtime")

CLIENT_GONE = 499  # counted (as a 4XX) for a request whose client left before its answer


class PredictHandler:
    """Serves ``POST /predict`` and ``POST <endpoint>`` for one worker process."""

    def __init__(self, runtime: ProcessState) -> None:
        self.runtime = runtime
        self.clock = deadlines.Clock()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        started = time.perf_counter()
        rid, content_type, length = _scan_headers(scope["headers"])
        token = logs.request_id.set(rid)
        guard = self.clock.guard(receive, runtime.limits.body_timeout, runtime.timeout)
        status = 503
        runtime.active += 1
        try:
            status = await self._read_then_admit(scope, guard, send, rid, content_type, length)
        except deadlines.Disconnected:
            status = CLIENT_GONE
        finally:
            guard.close()
            runtime.active -= 1
            runtime.metrics.observe(status, time.perf_counter() - started)
            logs.request_id.reset(token)

    async def _read_then_admit(
        self,
        scope: Scope,
        guard: deadlines.Guard,
        send: Send,
        rid: str,
        content_type: str,
        length: int,
    ) -> int:
        runtime = self.runtime
        if not runtime.serving:
            return await self._unavailable(send, rid, f"api is {runtime.status()}")
        close, limit = runtime.draining, runtime.limits.max_body_bytes
        try:
            body = await guard.body(limit) if length <= limit else None
        except deadlines.BodyTimeout:
            runtime.metrics.body_timed_out()
            error = f"the request body did not arrive within {runtime.limits.body_timeout:g}s"
            return await responses.send_json(send, 408, _error(error, rid), rid, close=True)
        if body is None:
            error = f"request body is larger than the limit of {limit} bytes"
            return await responses.send_json(send, 413, _error(error, rid), rid, close)
        if not runtime.shared.try_acquire(runtime.slot):
            runtime.metrics.reject()
            return await self._unavailable(send, rid, "too many requests in flight")
        try:
            if runtime.models is None:
                return await self._admitted(scope, guard, send, rid, content_type, body)
            # The model the query chose is checked first; leases end after the response.
            chosen = runtime.models.begin(scope["query_string"])
            try:
                return await self._admitted(scope, guard, send, rid, content_type, body)
            finally:
                runtime.models.end(chosen)
        except modelclient.ModelRequestError as exc:
            return await _model_error(send, exc, rid, close)
        finally:
            runtime.shared.release(runtime.slot)

    async def _unavailable(self, send: Send, rid: str, why: str) -> int:
        retry = self.runtime.limits.retry_after_seconds
        body = {"error": f"{why}; retry in {retry}s", "request_id": rid}
        return await responses.send_json(send, 503, body, rid, self.runtime.draining, retry)

    async def _admitted(
        self,
        scope: Scope,
        guard: deadlines.Guard,
        send: Send,
        rid: str,
        content_type: str,
        body: bytes,
    ) -> int:
        runtime = self.runtime
        spec = runtime.predictor_class
        assert spec is not None  # serving implies loaded
        close = runtime.draining
        try:
            kwargs = await _predict_kwargs(spec.predict_args, scope, body, content_type)
        except codec.PayloadError as exc:
            return await responses.send_json(send, 400, _error(str(exc), rid), rid, close)
        handed_over = False  # to post_predict, which closes the uploads when it is done
        try:
            result = await guard.answer(runtime.call(kwargs))
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                status = await self._stream(scope, guard, send, result, rid)
            else:
                guard.answering()
                status = await _send_result(scope, guard.receive, send, result, rid, close)
        except deadlines.TimedOut:
            runtime.metrics.timed_out()
            error = (
                f"the prediction did not answer within networking.timeout "
                f"({format_duration(runtime.timeout)})"
            )
            log.warning("%s: answered 504", error)
            return await responses.send_json(send, 504, _error(error, rid), rid, close)
        except (deadlines.Disconnected, modelclient.ModelRequestError):
            raise
        except Exception as exc:
            hint = codec.form_hint(content_type, body)
            logs.log_failure(log, "predict", exc, hint)
            error = f"{type(exc).__name__}: {exc}"[:1000] + (f" ({hint})" if hint else "")
            return await responses.send_json(send, 500, _error(error, rid), rid, close)
        else:
            if spec.post_predict_args is not None:
                self._post_predict(spec.post_predict_args, kwargs, result)
                handed_over = True
            return status
        finally:
            if not handed_over:
                _close_uploads(kwargs)

    async def _stream(
        self, scope: Scope, guard: deadlines.Guard, send: Send, gen: Any, rid: str
    ) -> int:
        pool = self.runtime.pool
        chunks = streaming.from_thread(gen, pool) if inspect.isgenerator(gen) else gen
        try:  # errors before any byte become a 500, no first chunk in time a 504
            first = await guard.answer(streaming.first_chunk(chunks))
        except BaseException:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        guard.answering()
        sse = streaming.wants_sse(scope["headers"])
        headers = [
            (b"content-type", b"text/event-stream" if sse else b"application/octet-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            (responses.REQUEST_ID_HEADER, rid.encode("latin-1")),
        ]
        await streaming.stream(chunks, first, guard.receive, send, headers, sse)
        return 200

    def _post_predict(self, args: tuple[str, ...], kwargs: dict[str, Any], result: Any) -> None:
        values = {**kwargs, "response": result}
        call_kwargs = {name: values.get(name) for name in args}
        # load_predictor_class found post_predict (post_predict_args is set).
        hook = cast(predictor.PostPredictor, self.runtime.predictor).post_predict
        if inspect.iscoroutinefunction(hook):
            task = asyncio.get_running_loop().create_task(_guard(hook(**call_kwargs), kwargs))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.runtime.pool.submit(_then_close(hook, kwargs), **call_kwargs)


def _error(message: str, rid: str) -> dict[str, str]:
    return {"error": message, "request_id": rid}


async def _model_error(
    send: Send, exc: modelclient.ModelRequestError, rid: str, close: bool
) -> int:
    """A model that does not exist (404) or a request that names none (400), with the list."""
    body = {"error": str(exc), "models": exc.models[:1000], "request_id": rid}
    return await responses.send_json(send, exc.status, body, rid, close)


def _close_uploads(kwargs: dict[str, Any]) -> None:
    """Close the files of a form payload (their spooled temporary files) once it is used."""
    payload = kwargs.get("payload")
    if isinstance(payload, FormData):
        for _, value in payload.multi_items():  # every file of a repeated field
            if isinstance(value, UploadFile):
                value.file.close()


def _then_close(hook: Any, kwargs: dict[str, Any]) -> Any:
    def run(**call_kwargs: Any) -> Any:
        try:
            return hook(**call_kwargs)
        finally:
            _close_uploads(kwargs)

    run.__name__ = getattr(hook, "__name__", "post_predict")
    return run


async def _guard(coro: Any, kwargs: dict[str, Any]) -> None:
    try:
        await coro
    except Exception as exc:
        logs.log_failure(log, "post_predict", exc)
    finally:
        _close_uploads(kwargs)


def _scan_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str, int]:
    """One pass over the headers: request id, content type and declared length."""
    raw_rid: bytes | None = None
    content_type = ""
    length = 0
    for key, value in headers:
        if key == responses.REQUEST_ID_HEADER:
            raw_rid = value
        elif key == b"content-type":
            content_type = value.decode("latin-1")
        elif key == b"content-length" and value.isdigit():
            length = int(value)
    return responses.request_id(raw_rid), content_type, length


async def _predict_kwargs(
    args: tuple[str, ...], scope: Scope, body: bytes, content_type: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "payload" in args:
        mime, charset = codec.media_type(content_type)
        if codec.is_form(mime):
            kwargs["payload"] = await _form(scope, body, mime, content_type)
        else:
            kwargs["payload"] = codec.decode_body(body, mime, charset)
    if "query_params" in args:
        kwargs["query_params"] = QueryParams(scope["query_string"])
    if "headers" in args:
        kwargs["headers"] = Headers(scope=scope)
    return kwargs


async def _form(scope: Scope, body: bytes, mime: str, content_type: str) -> Any:
    """The parsed form; a body the parsers refuse (random bytes, a missing or wrong boundary, a
    cut part) is a :class:`codec.PayloadError`, whatever the parser raised."""
    if mime == "multipart/form-data" and not _closed(body, content_type):
        raise codec.PayloadError(f"the body is not valid {mime}: it ends before its last boundary")
    try:
        return await Request(scope, _replay(body)).form()
    except Exception as exc:  # python-multipart and starlette raise several kinds
        said = str(exc).strip() or type(exc).__name__
        raise codec.PayloadError(f"the body is not valid {mime}: {said[:200]}") from None


def _closed(body: bytes, content_type: str) -> bool:
    """Whether a multipart body holds its close delimiter (RFC 2046). Without it the parser
    drops a cut last part without a word, and leaves a cut upload's temporary file open."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        return True  # the parser refuses it
    close = b"--" + boundary + b"--"
    return body.startswith(close) or b"\r\n" + close in body


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_result(
    scope: Scope, receive: Receive, send: Send, result: Any, rid: str, close: bool
) -> int:
    if isinstance(result, Response):
        result.headers.setdefault("x-request-id", rid)
        if close:
            result.headers["connection"] = "close"
        await result(scope, receive, send)
        return result.status_code
    try:
        body, content_type = codec.encode_result(result)
    except TypeError as exc:
        raise TypeError(f"predict returned a value that cannot be sent as JSON: {exc}") from exc
    await responses.send_body(send, 200, body, content_type, rid, close)
    return 200
