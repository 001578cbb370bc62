"""Resource quantities (``500m``, ``1.5Gi``, ``1e3``) parsed and written in canonical form, as
``resource.Quantity`` does: what a real server stores for ``0.5`` is ``500m``, for ``1000m`` ``1``,
for ``1.5Gi`` ``1536Mi`` and for ``2000`` ``2k``. Pure.
"""

from __future__ import annotations

import fractions
import math
import re

PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"  # as the decoding error quotes it

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SUFFIX_OF = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_BINARY_OF = {0: ""} | {power: suffix for suffix, power in _BINARY.items()}
_NUMBER = re.compile(r"^([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(.*)$")
_EXPONENT = re.compile(r"^[eE]([-+]?[0-9]+)$")


def parse(text: str | int | float) -> tuple[fractions.Fraction, str]:
    """(value, format) with format ``binary``, ``decimal`` or ``exponent``; ValueError if bad."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a quantity")
    if isinstance(text, int | float):
        text = repr(text) if isinstance(text, float) else str(text)
    match = _NUMBER.match(text.strip()) if re.match(PATTERN, text.strip()) else None
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    sign, number, suffix = match.groups()
    value = fractions.Fraction(number)
    if suffix in _BINARY:
        value, form = value * 1024 ** _BINARY[suffix], "binary"
    elif suffix in _DECIMAL:
        value, form = value * fractions.Fraction(10) ** _DECIMAL[suffix], "decimal"
    elif exponent := _EXPONENT.match(suffix):
        value, form = value * fractions.Fraction(10) ** int(exponent.group(1)), "exponent"
    else:
        raise ValueError(f"{text!r} has no known suffix")
    nanos = math.ceil(abs(value) * 10**9)  # the smallest precision is 1n, rounded up
    return fractions.Fraction(-nanos if sign == "-" else nanos, 10**9), form


def canonical(text: str | int | float) -> str:
    """The canonical form of a quantity (ValueError if it is not one)."""
    value, form = parse(text)
    if value == 0:
        return "0"
    if form == "binary" and (-1024 < value < 1024 or value.denominator != 1):
        form = "decimal"  # as binary it would be rounded
    if form == "binary":
        amount, power = int(value), 0
        while amount % 1024 == 0 and power < 6:
            amount, power = amount // 1024, power + 1
        return f"{amount}{_BINARY_OF[power]}"
    amount, exponent = int(value * 10**9), -9
    while amount % 10 == 0:
        amount, exponent = amount // 10, exponent + 1
    amount, exponent = amount * 10 ** (exponent % 3), exponent - exponent % 3
    if form == "decimal" and exponent in _SUFFIX_OF:
        return f"{amount}{_SUFFIX_OF[exponent]}"
    return f"{amount}e{exponent}" if exponent else str(amount)
