"""Tamper evidence: each kind of tampering on each backend makes `baomi audit verify` fail and name
the first bad entry; an untampered log verifies. The log is produced by a real collector."""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import Collector, Postgres, baomi, sync_agents_table

from policies.keys import generate_private_key
from reports.chain import Entry, entry_hash
from reports.events import GENESIS, AuditEvent, make_event
from reports.store import QUERY_COLS, SqlStore, open_store

N_EVENTS = 12  # per agent


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pristine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str | None]:
    """A log of two interleaved agents with a checkpoint in the middle and one at the end."""
    from reports.server import init_data

    db = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        db = pg.new_database()
    root = tmp_path_factory.mktemp("pristine")
    data = root / "srv"
    init_data(data, db_url=db)
    c = Collector(data, db, checkpoint_interval=0).start()
    try:
        a, b = c.enroll(root / "a", hostname="ws-01"), c.enroll(root / "b", hostname="ws-02")
        with c.http(role="auditor") as off:
            for i in range(N_EVENTS):
                a.submit("finding", {"path": f"/home/u/{i}.docx", "marking": "机密★10年",
                                     "level": "secret", "rule": "BM-M001", "sha256": f"{i:064x}"})
                a.flush()
                b.submit("heartbeat", {"n": i})
                b.flush()
                if i == N_EVENTS // 2:
                    assert off.post("/v1/checkpoints").status_code == 200
            assert off.post("/v1/checkpoints").status_code == 200
        a.close()
        b.close()
    finally:
        c.stop()
    return data, db


@pytest.fixture
def copy(pristine: tuple[Path, str | None], tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str | None]:
    data, db = pristine
    dst = tmp_path / "srv"
    shutil.copytree(data, dst)
    if db is None:
        return dst, None
    import psycopg

    pg: Postgres = request.getfixturevalue("postgres")
    name = "c_" + tmp_path.name.lower().replace("-", "_")[-40:]
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {db.rsplit('/', 1)[1]}")
    return dst, pg.url(name)


def load(data: Path, db: str | None) -> list[Entry]:
    store = open_store(data, db)
    try:
        return list(store.entries())
    finally:
        store.close()


def rewrite(data: Path, db: str | None, entries: list[Entry], rehash: bool) -> None:
    """Replace the whole chain, as an attacker with database access would."""
    store = open_store(data, db)
    assert isinstance(store, SqlStore)
    try:
        prev = GENESIS
        rows = []
        for e in entries:
            h = entry_hash(prev, e.gseq, e.kind, e.received, e.record) if rehash else e.hash
            # The query columns go along (an attacker keeps them plausible; verify checks them).
            cols = e.columns or (None,) * len(QUERY_COLS)
            rows.append((e.gseq, e.kind, e.received, json.dumps(e.record, ensure_ascii=False), h, *cols))
            prev = h
        with store._tx() as cur:
            cur.execute("DELETE FROM entries")
            cur.executemany(store._sql(f"INSERT INTO entries (gseq, kind, received, record, hash,"
                                       f" {', '.join(QUERY_COLS)}) VALUES ({', '.join(['?'] * 14)})"),
                            rows)
            cur.execute(store._sql("UPDATE head SET size = ?, root = ?"), (len(rows), prev))
    finally:
        store.close()


def verify(data: Path, db: str | None, *extra: str) -> tuple[int, str]:
    args = ["audit", "verify", "--data", str(data)]
    if db:
        args += ["--db", db]
    res = baomi(*args, *extra, check=False)
    return res.returncode, res.stdout + res.stderr


def named(output: str) -> int:
    m = re.search(r"first bad entry #(\d+)", output)
    assert m, output
    return int(m.group(1))


def events_of(entries: list[Entry]) -> list[int]:
    """Indexes (0-based) of event entries of the first agent."""
    agent = next(e.record["agent"] for e in entries if e.kind == "event")
    return [i for i, e in enumerate(entries) if e.kind == "event" and e.record["agent"] == agent]


def renumber(entries: list[Entry]) -> list[Entry]:
    return [replace(e, gseq=i + 1) for i, e in enumerate(entries)]


def edited(e: Entry) -> Entry:
    rec = dict(e.record)
    rec["payload"] = {**rec["payload"], "path": "/home/u/harmless.txt"}
    return replace(e, record=rec)


def test_untampered_log_verifies(copy: tuple[Path, str | None]) -> None:
    data, db = copy
    rc, out = verify(data, db)
    assert rc == 0, out
    n = len(load(data, db))
    assert f"{n} entries" in out and "2 agents" in out


Tamper = Callable[[list[Entry]], tuple[list[Entry], bool, int]]


def _edit(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    k = events_of(es)[4]
    es[k] = edited(es[k])
    return es, False, es[k].gseq


def _edit_rehash(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    k = events_of(es)[5]
    es[k] = edited(es[k])
    return es, True, es[k].gseq


def _resign(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    k = events_of(es)[6]
    ev = AuditEvent.from_dict(es[k].record)
    forged = make_event(generate_private_key(), ev.agent, ev.seq, ev.prev, ev.type,
                        {**ev.payload, "marking": "内部"}, time=ev.time, event_id=ev.id)
    es[k] = replace(es[k], record=forged.to_dict())
    return es, True, es[k].gseq


def _delete(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    k = events_of(es)[3]
    gseq = es[k].gseq
    del es[k]
    return es, False, gseq


def _delete_renumber(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    idx = events_of(es)
    del es[idx[3]]
    es = renumber(es)
    # The gap shows at the same agent's next event, which moved down by one.
    return es, True, idx[4]


def _insert(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    k = events_of(es)[2]
    ev = AuditEvent.from_dict(es[k].record)
    fake = make_event(generate_private_key(), ev.agent, ev.seq + 1, ev.hash, "heartbeat", {})
    es.insert(k + 1, replace(es[k], record=fake.to_dict(), columns=None))
    return renumber(es), True, k + 2


def _reorder(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    i, j = events_of(es)[7:9]
    es[i], es[j] = replace(es[j], gseq=es[i].gseq), replace(es[i], gseq=es[j].gseq)
    return es, True, es[i].gseq


def _reorder_no_rehash(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    i, j = events_of(es)[7:9]
    es[i], es[j] = replace(es[j], gseq=es[i].gseq), replace(es[i], gseq=es[j].gseq)
    return es, False, es[i].gseq


def _truncate(es: list[Entry]) -> tuple[list[Entry], bool, int]:
    keep = len(es) - 3
    return es[:keep], False, keep + 1


@pytest.mark.parametrize("tamper", [_edit, _edit_rehash, _resign, _delete, _delete_renumber, _insert,
                                    _reorder, _reorder_no_rehash, _truncate],
                         ids=lambda f: f.__name__.strip("_"))
def test_tampering_is_detected_and_named(copy: tuple[Path, str | None], tamper: Tamper) -> None:
    data, db = copy
    entries, rehash, expected = tamper(load(data, db))
    rewrite(data, db, entries, rehash)
    rc, out = verify(data, db)
    assert rc == 1, out
    assert named(out) == expected, out


def test_second_party_checkpoints_catch_a_rewritten_and_truncated_log(
        copy: tuple[Path, str | None], tmp_path: Path) -> None:
    """The attacker truncates, re-hashes and deletes the checkpoints in the store: only the
    checkpoints exported to a second party still show it."""
    data, db = copy
    cps = tmp_path / "held-by-second-party.jsonl"
    args = ["audit", "checkpoint", "--data", str(data), "--out", str(cps)] + (["--db", db] if db else [])
    baomi(*args)
    entries = load(data, db)
    keep = len(entries) - 5
    rewrite(data, db, entries[:keep], rehash=True)
    store = open_store(data, db)
    assert isinstance(store, SqlStore)
    with store._tx() as cur:
        cur.execute("DELETE FROM checkpoints")
        cur.execute("DELETE FROM tree_heads")
    store.close()
    sync_agents_table(data, db)
    rc, out = verify(data, db)
    assert rc == 0, out  # the store alone can no longer tell
    rc, out = verify(data, db, "--checkpoints", str(cps))
    assert rc == 1 and named(out) == keep + 1, out
    assert "truncated" in out


def test_offline_export_verifies_and_detects_edits(copy: tuple[Path, str | None], tmp_path: Path) -> None:
    data, db = copy
    log = tmp_path / "log.jsonl"
    cps = tmp_path / "cps.jsonl"
    dbargs = ["--db", db] if db else []
    baomi("audit", "export", "--data", str(data), *dbargs, "--out", str(log), "--checkpoints-out", str(cps))
    key = str(data / "server.pub")
    ok = baomi("audit", "verify", "--log", str(log), "--server-key", key, "--checkpoints", str(cps),
               check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    k = next(i for i, x in enumerate(lines) if '"finding"' in x and i > 5)
    obj: dict[str, Any] = json.loads(lines[k])
    obj["record"]["payload"]["level"] = "internal"
    lines[k] = json.dumps(obj, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = baomi("audit", "verify", "--log", str(log), "--server-key", key, check=False)
    assert bad.returncode == 1 and named(bad.stdout) == obj["gseq"], bad.stdout


def test_a_foreign_server_key_is_refused(copy: tuple[Path, str | None], tmp_path: Path) -> None:
    """Re-signing everything (enrolments, checkpoints) needs the server key; a pinned key shows it."""
    from policies.keys import public_key_pem

    data, db = copy
    other = tmp_path / "other.pub"
    other.write_bytes(public_key_pem(generate_private_key()))
    rc, out = verify(data, db, "--server-key", str(other))
    assert rc == 1, out
