"""Canonical JSON: the one byte string a JSON value is hashed as (RFC 8785, restricted to integers)."""

from __future__ import annotations

import json

# The largest integer every JSON parser reads exactly (I-JSON, RFC 7493).
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalJSONError(ValueError):
    """The value has no canonical form: a float, a huge integer, a non-string key, a lone surrogate…"""


def canonical_json(value: object) -> bytes:
    """UTF-8 bytes, keys sorted by code point, no whitespace, minimal escapes, integers only."""
    _check(value, "$")
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJSONError("a string holds a lone surrogate, which UTF-8 cannot encode") from exc


def _check(value: object, path: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"{path}: integer {value} is beyond ±(2**53 - 1)")
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"{path}: numbers must be integers, found {value!r}")
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _check(item, f"{path}[{position}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: object keys must be strings, found {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON value")
