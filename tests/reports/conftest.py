"""Fixtures of the audit-log tests (helpers live in audit_helpers.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import Collector, Postgres

from reports.server import init_data


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres().start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite, a fresh database URL for PostgreSQL."""
    if request.param == "sqlite":
        return None
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.new_database()


@pytest.fixture
def server_data(tmp_path: Path, backend: str | None) -> Path:
    data = tmp_path / "srv"
    init_data(data, db_url=backend)
    return data


@pytest.fixture
def sqlite_data(tmp_path: Path) -> Path:
    data = tmp_path / "srv"
    init_data(data)
    return data


@pytest.fixture
def collector(sqlite_data: Path) -> Iterator[Collector]:
    c = Collector(sqlite_data).start()
    try:
        yield c
    finally:
        c.stop()
