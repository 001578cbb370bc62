"""API errors of the fake server, rendered as Kubernetes ``v1 Status`` objects."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request: HTTP code, Kubernetes reason (``NotFound``, ``Conflict``) and message."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` body; without details, none (Go's ``omitempty``, e.g. on a 401)."""
        status = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }
        if not self.details:
            del status["details"]
        return status


def not_found(what: str, name: str | None = None) -> ApiError:
    if name is None:
        return ApiError(404, "NotFound", "the server could not find the requested resource")
    return ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": what})


def conflict(what: str, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": {why}')


def already_exists(what: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name})


_CAUSES = {
    "Required value": "FieldValueRequired",
    "Duplicate value": "FieldValueDuplicate",
    "Unsupported value": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
}


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiError:
    """422 with one cause per (field, problem), which kubectl lists under the message; several
    are bracketed, as Go's aggregate error prints them (``Deployment.apps "x" is invalid: [...]``).
    """
    errors = [f"{f}: {m}" for f, m in causes]
    listed = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    details["causes"] = [{"reason": _reason(m), "field": f, "message": m} for f, m in causes]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {listed}', details)


def _reason(message: str) -> str:
    return next((r for p, r in _CAUSES.items() if message.startswith(p)), "FieldValueInvalid")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format"
        f" - accepted media types include: application/json-patch+json, "
        f"application/merge-patch+json (got {content_type})",
    )
