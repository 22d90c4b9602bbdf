"""Canonical JSON: one byte string per value, and no value without one."""

from __future__ import annotations

import math

import pytest

from web.fairness import CanonicalJSONError, canonical_json


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2, "": 3}, b'{"":3,"a":2,"b":1}'),
        ({"é": 1, "z": 2, "Z": 3}, '{"Z":3,"z":2,"é":1}'.encode()),
        ({"\U0001f600": 1, "\uffff": 2}, '{"\uffff":2,"\U0001f600":1}'.encode()),
        ([1, [2, {"x": None}], True, False], b'[1,[2,{"x":null}],true,false]'),
        ('q" b\\ /', b'"q\\" b\\\\ /"'),
        ("\b\f\n\r\t", b'"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f\x7f", b'"\\u0000\\u0001\\u001f\x7f"'),
        ("zoë 日本 🎉 \u2028", '"zoë 日本 🎉 \u2028"'.encode()),
        (-(2**53 - 1), b"-9007199254740991"),
        ((1, 2), b"[1,2]"),
        ({}, b"{}"),
    ],
)
def test_values_have_their_canonical_bytes(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [1.0, 0.5, math.nan, math.inf, {"a": [1, 2.5]}, 2**53, -(2**53), {1: "x"}, "\ud800", {"a": b"bytes"}, {1, 2}],
)
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)
