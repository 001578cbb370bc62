"""Turns request bodies into payloads and predictor results into HTTP responses.

Request, by ``Content-Type`` (DESIGN.md section 1): ``application/json`` -> parsed JSON,
``text/plain`` -> ``str`` (charset honoured), form types -> ``FormData``, else raw ``bytes``.
Response, by return type: ``bytes`` -> octet-stream, ``str`` -> text/plain, a Starlette
``Response`` -> passed through, anything else -> JSON (numpy and torch values converted).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import orjson

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
OCTET = b"application/octet-stream"
FORM_URLENCODED = "application/x-www-form-urlencoded"
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_SURROGATE = re.compile("[\ud800-\udfff]")


class PayloadError(ValueError):
    """The request body does not match its content type (answered with 400)."""


def media_type(content_type: str) -> tuple[str, str]:
    """Split a Content-Type header into (lowercase media type, charset or '')."""
    mime, _, params = content_type.partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"')
    return mime.strip().lower(), charset


def is_form(mime: str) -> bool:
    return mime in ("multipart/form-data", FORM_URLENCODED)


def form_hint(content_type: str, body: bytes) -> str:
    """Why a form payload may have failed: ``curl -d '{...}'`` sends JSON as a form (curl's
    default type), and the predictor gets form fields where it expected keys. '' otherwise."""
    if media_type(content_type)[0] != FORM_URLENCODED:
        return ""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return f"the request was sent as {FORM_URLENCODED}; send Content-Type: application/json"


def decode_body(body: bytes, mime: str, charset: str) -> Any:
    """Decode a non-form body; raises ``PayloadError`` for bad JSON or bad text bytes."""
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"the body is not valid JSON: {exc}") from None
    if mime == "text/plain":
        return _decode_text(body, charset or "utf-8")
    return body


def _decode_text(body: bytes, charset: str) -> str:
    """``body`` as text in ``charset``. Python's codec registry also holds codecs that are no
    charset (``base64``, ``rot13``) and decoders whose text may hold lone surrogates
    (``unicode_escape``, ``utf-7``), which no JSON or UTF-8 can carry on: both are refused."""
    try:
        info = codecs.lookup(charset)
    except LookupError:
        raise PayloadError(f"unknown charset {charset!r} in Content-Type") from None
    if not info._is_text_encoding:  # the flag bytes.decode() itself checks
        raise PayloadError(f"charset {charset!r} in Content-Type is not a text encoding")
    try:
        text = body.decode(charset)
    except UnicodeError as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise PayloadError(f"the body is not valid {charset} text: {reason}") from None
    if info.name != "utf-8" and _SURROGATE.search(text):  # UTF-8's decoder refuses them
        raise PayloadError(f"the body is not valid {charset} text: it decodes to lone surrogates")
    return text


def _default(value: Any) -> Any:
    """orjson fallback for types it does not know (torch tensors, numpy scalars, sets)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_result(result: Any) -> tuple[bytes, bytes]:
    """Encode a plain predictor result; returns (body, content type). Raises TypeError."""
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result), OCTET
    if isinstance(result, str):
        return result.encode(), TEXT
    return orjson.dumps(result, default=_default, option=_ORJSON_OPTS), JSON


def dumps(value: Any) -> bytes:
    """JSON-encode a value cortex itself produces (error bodies, descriptions)."""
    return orjson.dumps(value, default=_default, option=_ORJSON_OPTS)
