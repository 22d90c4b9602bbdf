"""The Cleack app as bench/web.py serves it: `uvicorn bench.cleack_app:app`, database from BENCH_DATABASE_URL."""

from __future__ import annotations

import os

from web.app import create_app
from web.settings import load_settings

# Served as in production (templates compiled once, production cookies), from the bench's database.
app = create_app(
    load_settings().with_overrides(environment="production"), database_url=os.environ["BENCH_DATABASE_URL"]
)
