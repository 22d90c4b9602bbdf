"""Stripe's wire format: form bodies in bracket notation, prefixed ids, lists and error objects."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any
from urllib.parse import parse_qsl

from litestar import Response

API_VERSION = "2026-10-28.endive"
_KEY_PART = re.compile(r"\[([^\[\]]*)\]")
_ID_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """An error the API answers with Stripe's JSON error object."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = {"error": {"type": type_, "code": code, "message": message, "param": param}}

    def response(self) -> Response[Any]:
        return Response(self.body, status_code=self.status_code, headers={"request-id": new_id("req")})


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid", param=param)


def no_such(kind: str, object_id: str, param: str | None = None, status_code: int = 404) -> StripeError:
    return StripeError(status_code, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def decode_form(body: str) -> dict[str, Any]:
    """`line_items[0][price]=p&metadata[a]=b&expand[]=x` into nested dicts and lists, as Stripe reads it."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            child_kind: Any = None if last else (list if parts[index + 1].isdigit() or parts[index + 1] == "" else dict)
            if isinstance(node, list):
                position = len(node) if part == "" else int(part)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if not isinstance(node[position], (dict, list)):
                        node[position] = child_kind()
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    if not isinstance(node.get(part), (dict, list)):
                        node[part] = child_kind()
                    node = node[part]
    return _compact(root)


def _compact(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _compact(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_compact(value) for value in node if value is not None]
    return node


def as_list(data: list[dict[str, Any]], url: str, *, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def as_int(params: dict[str, Any], name: str, *, default: int | None = None, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 12:
        raise invalid(name, f"Invalid integer: {raw}")
    value = int(raw)
    if value < minimum:
        raise invalid(name, f"This value must be greater than or equal to {minimum}.")
    return value


def as_bool(params: dict[str, Any], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid(name, f"Invalid boolean: {raw}")
    return raw == "true"


def as_metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str]:
    raw = params.get(name) or {}
    if raw == "":
        return {}
    if not isinstance(raw, dict) or any(not isinstance(value, str) for value in raw.values()):
        raise invalid(name, "Invalid hash")
    if len(raw) > 50 or any(len(key) > 40 or len(value) > 500 for key, value in raw.items()):
        raise invalid(name, "Metadata can have up to 50 keys of 40 characters and values of 500 characters.")
    return dict(raw)


def expansions(params: dict[str, Any]) -> set[str]:
    raw = params.get("expand") or []
    return {item for item in raw if isinstance(item, str)} if isinstance(raw, list) else set()
