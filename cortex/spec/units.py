"""Durations, Kubernetes quantities and int-or-percent values of an API spec. Pure, no I/O.

Each value kind has a parser, a formatter and an ``Annotated`` type for the pydantic models:

- durations (``10ms``, ``2s``, ``5m``, ``1h``, ``1m30s``, or a bare number of seconds) validate to
  ``float`` seconds and serialize (JSON mode) to a canonical string in the largest whole unit;
- quantities (``200m``, ``1``, ``0.5``, ``512Mi``, ``2Gi``, ``1G``; numbers are cast) stay strings,
  with :func:`cpu_millicores` and :func:`mem_bytes` to read them;
- int-or-percent (``25%`` or ``3``) is what a Deployment's rolling update takes.

Validators raise :func:`cortex.spec.messages.rule_error`, which reads as one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from cortex.spec import messages

__all__ = [
    "DURATION_PATTERN",
    "INT_OR_PERCENT_PATTERN",
    "QUANTITY_PATTERN",
    "CpuQuantity",
    "Duration",
    "IntOrPercent",
    "MemQuantity",
    "cpu_millicores",
    "format_duration",
    "mem_bytes",
    "parse_duration",
    "parse_quantity",
]

DURATION_PATTERN = r"^(([0-9]+(\.[0-9]+)?(ms|h|m|s))+|[0-9]+(\.[0-9]+)?)$"
QUANTITY_PATTERN = (
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
INT_OR_PERCENT_PATTERN = r"^[0-9]+%$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_QUANTITY_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(QUANTITY_PATTERN)
_MAX_QUANTITY = Decimal(2**63 - 1)  # what a Kubernetes quantity can hold
_MAX_SECONDS = Decimal(10**9)  # 31 years: longer is a typo, and would not survive float()
_MAX_PERCENT = 2**31 - 1  # a Deployment's int-or-percent is an int32
_MAX_EXPONENT = 30


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_duration(value: str | float) -> float:
    """Seconds in a duration such as ``10ms``, ``1m30s`` or ``60`` (a bare number is seconds)."""
    if _is_number(value):
        seconds = Decimal(str(value))
    elif isinstance(value, str) and re.fullmatch(DURATION_PATTERN, value.strip()):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts:
            seconds = sum((Decimal(n) * _DURATION_UNITS[u] for n, u in parts), Decimal(0))
        else:
            seconds = Decimal(text)
    else:
        raise ValueError(f"{value!r} is not a duration (e.g. 10ms, 2s, 5m)")
    if seconds < 0 or not seconds.is_finite():
        raise ValueError(f"{value!r} is not a duration (e.g. 10ms, 2s, 5m)")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{value!r} is longer than {_MAX_SECONDS} seconds")
    return float(seconds)


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def format_duration(seconds: float) -> str:
    """The canonical text of a duration: the largest unit (h, m, s, ms) it is a whole number of."""
    value = Decimal(str(seconds))
    if value == 0:
        return "0s"
    for unit in ("h", "m", "s"):
        count = value / _DURATION_UNITS[unit]
        if count == count.to_integral_value():
            return f"{_plain(count)}{unit}"
    return f"{_plain(value * 1000)}ms"


def _validate_duration(value: object) -> float:
    if not (_is_number(value) or isinstance(value, str)):
        raise messages.rule_error("is not a duration (e.g. 10ms, 2s, 5m)", value)
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except ValueError:
        raise messages.rule_error("is not a duration (e.g. 10ms, 2s, 5m)", value) from None


def _serialize_duration(value: float | str) -> str:
    # A str only reaches here as a field's default written in the model, e.g. "60s".
    return format_duration(parse_duration(value))


Duration = Annotated[
    float,
    BeforeValidator(_validate_duration),
    PlainSerializer(_serialize_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""Seconds as a float in Python; a string such as ``10ms`` or ``5m`` in YAML and JSON."""


def _quantity_text(value: object) -> str:
    if _is_number(value):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"{value!r} is not a Kubernetes quantity")


def parse_quantity(value: str | float) -> Decimal:
    """The number a Kubernetes quantity stands for (``512Mi`` -> 536870912, ``200m`` -> 0.2).

    Kubernetes stores quantities in 63 bits: a larger one (``1e999999``) is refused here, before
    anything turns it into an integer of a million digits."""
    text = _quantity_text(value)
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number, suffix = match.group(1), match.group(3) or ""
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():  # not Ei: an exponent
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"{value!r} is too large or too small for a Kubernetes quantity")
        result = Decimal(number) * Decimal(10) ** exponent
    else:
        result = Decimal(number) * _QUANTITY_SUFFIXES[suffix]
    if result > _MAX_QUANTITY:
        raise ValueError(f"{value!r} is too large for a Kubernetes quantity")
    return result


def cpu_millicores(quantity: str | float) -> int:
    """CPU millicores of a quantity, rounded up like Kubernetes does (``0.5`` -> 500)."""
    return math.ceil(parse_quantity(quantity) * 1000)


def mem_bytes(quantity: str | float) -> int:
    """Bytes of a memory quantity, rounded up (``512Mi`` -> 536870912, ``1G`` -> 10**9)."""
    return math.ceil(parse_quantity(quantity))


def _quantity_validator(examples: str) -> Callable[[object], str]:
    rule = f"is not a Kubernetes quantity (e.g. {examples})"

    def validate(value: object) -> str:
        if not (_is_number(value) or isinstance(value, str)):
            raise messages.rule_error(rule, value)
        try:
            parse_quantity(value)  # type: ignore[arg-type]
        except ValueError:
            raise messages.rule_error(rule, value) from None
        return _quantity_text(value)

    return validate


_QUANTITY_SCHEMA = WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN})

_CPU = BeforeValidator(_quantity_validator("200m, 1, 2.5"))
_MEM = BeforeValidator(_quantity_validator("512Mi, 2Gi, 1G"))

CpuQuantity = Annotated[str, _CPU, _QUANTITY_SCHEMA]
"""A CPU quantity kept as text (``200m``); numbers are cast to text."""
MemQuantity = Annotated[str, _MEM, _QUANTITY_SCHEMA]
"""A memory quantity kept as text (``512Mi``); numbers are cast to text."""


def _validate_int_or_percent(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_PERCENT:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and len(text) <= 10 and int(text) <= _MAX_PERCENT:
            return int(text)
        is_percent = re.fullmatch(INT_OR_PERCENT_PATTERN, text) and len(text) <= 11
        if is_percent and int(text[:-1]) <= _MAX_PERCENT:
            return text
    raise messages.rule_error("must be an integer >= 0 or a percentage (e.g. 1, 25%)", value)


IntOrPercent = Annotated[
    int | str,
    BeforeValidator(_validate_int_or_percent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": INT_OR_PERCENT_PATTERN},
            ],
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A count (``3``) or a percentage string (``25%``), as a Deployment's rolling update takes."""
