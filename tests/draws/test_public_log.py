"""The public log's pages: every record, one record with its draw's others, a range as JSON for `cleack verify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from tests.draws.sandbox_draws import (
    RULES_OFF,
    Engines,
    create_post,
    drawn,
    engines,
    sandbox_creator,
    save,
    verify,
)

__all__ = ["engines", "sandbox_creator"]  # fixtures used below


async def test_the_log_lists_a_draws_records_and_a_range_of_them_verifies_its_certificate(
    engines: Engines,
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 20)
    draw = await drawn(engines, engine, creator, [post], RULES_OFF)
    assert draw.certificate is not None
    opened, sealed = draw.certificate["opened"], draw.certificate["sealed"]

    index = await client.get("/log")
    record = await client.get(f"/log/{sealed['seq']}")
    extract = await client.get("/log/records.json", params={"from": opened["seq"], "to": sealed["seq"] + 1})

    assert index.status_code == 200 and f'href="/log/{sealed["seq"]}"' in index.text
    assert "Latest witnessed head" in index.text
    assert record.status_code == 200 and sealed["record_hash"] in record.text
    assert f"/certificates/{draw.certificate_hash}" in record.text, "a record links its draw's certificate"
    records = extract.json()
    assert [item["kind"] for item in records] == ["opened", "sealed", "certified"]
    assert extract.headers["access-control-allow-origin"] == "*"
    (tmp_path / "log.json").write_bytes(extract.content)
    certificate = await save(client, f"/certificates/{draw.certificate_hash}.json", tmp_path / "certificate.json")
    keys = await save(client, "/.well-known/cleack-signing-key", tmp_path / "keys.json")
    result = verify(
        certificate, "--keys", keys, "--witness", live_server.witness.key.text, "--log", tmp_path / "log.json"
    )
    assert result.exit_code == 0, result.output
    assert "✓ log seal: " in result.output and "sealed once" in result.output

    # The replay of a v2 draw works as a v1 one's does.
    for path in ("reveal", "reveal.gif"):
        assert (await client.get(f"/certificates/{draw.certificate_hash}/{path}")).status_code == 200

    # A record taken out of the extract breaks its chain of heads.
    (tmp_path / "gap.json").write_text(json.dumps([records[0], records[2]]))
    assert verify(certificate, "--keys", keys, "--log", tmp_path / "gap.json").exit_code == 1


async def test_odd_addresses_of_the_log_get_a_clear_answer_never_a_server_error(client: httpx.AsyncClient) -> None:
    for path in ("/log/0", "/log/-3", "/log/99999999999999999999999", "/log/abc", "/log/9223372036854775807"):
        response = await client.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)
    for params in ({"from": "x", "to": "-1"}, {"from": "5", "to": "2"}, {"from": "1" * 40}, {"to": "🎉"}):
        response = await client.get("/log/records.json", params=params)
        assert response.status_code == 200 and isinstance(response.json(), list), params
    assert (await client.get("/log", params={"page": "9999"})).status_code == 200
