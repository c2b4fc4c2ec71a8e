"""PostgreSQL backend of the audit store (psycopg 3), for sites that outgrow one machine.

Same schema and SQL as SQLite (`reports.store.SqlStore`). Every append locks the chain head row
(`SELECT … FOR UPDATE`), which serialises appends across any number of collector processes
sharing the database; commits use PostgreSQL's default `synchronous_commit = on`.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from reports.store import SqlStore


class PostgresStore(SqlStore):
    backend = "postgresql"
    lock_clause = " FOR UPDATE"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._all_lock = threading.Lock()
        with self._conn().cursor() as cur:
            # Several collectors may start at once: serialise schema creation.
            cur.execute("SELECT pg_advisory_lock(726501)")
        try:
            self.init_schema()
        finally:
            with self._conn().cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(726501)")

    def _conn(self) -> psycopg.Connection[Any]:
        # One connection per thread: the collector calls the store from a thread pool.
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.url, autocommit=True)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._conn().cursor() as cur:
            yield cur
