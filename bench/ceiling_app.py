"""The stack's ceiling: the least a Litestar + asyncpg + Jinja page that reads one table can cost.

Served by bench/web.py as `uvicorn bench.ceiling_app:app`. No ORM, no middleware, no session: one pooled
asyncpg query on the `bench_items` table that bench/web.py creates, rendered by a small Jinja template.
Connection from BENCH_ASYNCPG_DSN, plus BENCH_ASYNCPG_HOST when the server listens on a socket directory.
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
from jinja2 import DictLoader, Environment, select_autoescape
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

POOL_SIZE = 10  # the same as web.db.create_engine's default
QUERY = "SELECT id, title, status, entries, created_at FROM bench_items ORDER BY id"
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Items</title></head>
<body>
  <h1>Items</h1>
  <table>
    <thead><tr><th>Title</th><th>Status</th><th>Entries</th><th>Created</th></tr></thead>
    <tbody>
    {% for item in items %}
      <tr>
        <td>{{ item.title }}</td>
        <td>{{ item.status }}</td>
        <td>{{ "{:,}".format(item.entries) }}</td>
        <td>{{ item.created_at.strftime("%d %b %Y") }}</td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
</body>
</html>
"""


async def open_pool(app: Litestar) -> None:
    options: dict[str, Any] = {}
    if os.environ.get("BENCH_ASYNCPG_HOST"):
        options["host"] = os.environ["BENCH_ASYNCPG_HOST"]
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_ASYNCPG_DSN"], min_size=POOL_SIZE, max_size=POOL_SIZE, **options
    )


async def close_pool(app: Litestar) -> None:
    await app.state.pool.close()


@get("/")
async def page(state: State) -> Template:
    async with state.pool.acquire() as connection:
        items = await connection.fetch(QUERY)
    return Template(template_name="page.html", context={"items": items})


environment = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=select_autoescape(), enable_async=False)
app = Litestar(
    route_handlers=[page],
    on_startup=[open_pool],
    on_shutdown=[close_pool],
    template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment)),
    debug=False,
    logging_config=None,
)
