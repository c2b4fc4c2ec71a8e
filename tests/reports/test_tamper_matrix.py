"""The tamper matrix of issue 14: whoever can write the database (and nothing else) tampers with
it in each way the issue lists, plus edit/insert/delete/reorder of records and forged
checkpoints; `baomi audit verify` fails on every one and names the first bad entry when given
the witness directory the collector published to or an agent's kept tree heads, and passes on
the intact log.

The log comes from a real collector (`baomi server run --witness DIR` over loopback TLS) on a
real SQLite store; the agents are real clients, whose acknowledgements carry the tree heads
they keep. Each case tampers with a copy through SQL, as an attacker with the database would.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi, sync_agents_table

from policies.keys import generate_private_key, public_key_b64
from reports.chain import Entry, entry_hash
from reports.events import GENESIS
from reports.merkle import TreeHead
from reports.store import QUERY_COLS, SqlStore, open_store

N = 8  # events per agent and round


@dataclass(frozen=True)
class Log:
    root: Path
    data: Path
    witness: Path
    agent_a: Path  # state dir of agent a (ws-01), which keeps the tree heads of its acks
    agents: dict[str, str]  # hostname -> agent id


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Log:
    from reports.server import init_data

    root = tmp_path_factory.mktemp("matrix")
    data, witness = root / "srv", root / "witness"
    init_data(data)
    c = Collector(data, checkpoint_interval=0, extra_args=("--witness", str(witness))).start()
    try:
        a = c.enroll(root / "a", hostname="ws-01")
        b = c.enroll(root / "b", hostname="ws-02")
        e = c.enroll(root / "c", hostname="ws-03")  # the agent that will be erased
        with c.http(role="auditor") as off:
            for i in range(N):
                a.submit("finding", {"path": f"/home/u/{i}.docx", "marking": "机密★10年",
                                     "level": "secret", "rule": "BM-M001", "sha256": f"{i:064x}"})
                a.flush()
                b.submit("heartbeat", {"n": i})
                b.flush()
                if i % 3 == 0:
                    e.submit("finding", {"path": f"/srv/{i}.pdf", "marking": "秘密", "level": "confidential",
                                         "rule": "BM-M001", "sha256": f"{i:064x}"})
                    e.flush()
                if i % 2 == 1:  # a checkpoint now and then: stored and published to the witness
                    assert off.post("/v1/checkpoints").status_code == 200
            b.submit("heartbeat", {"n": "last"})
            b.flush()
            a.submit("finding", {"path": "/home/u/last.docx", "marking": "绝密", "level": "top_secret",
                                 "rule": "BM-M001", "sha256": "f" * 64})
            a.flush()
            assert off.post("/v1/checkpoints").status_code == 200
        hosts = {"ws-01": a.agent, "ws-02": b.agent, "ws-03": e.agent}
        for cl in (a, b, e):
            cl.close()
    finally:
        c.stop()
    return Log(root, data, witness, root / "a", hosts)


@pytest.fixture
def log(pristine: Log, tmp_path: Path) -> Log:
    for name in ("srv", "witness", "a"):
        shutil.copytree(pristine.root / name, tmp_path / name)
    return Log(tmp_path, tmp_path / "srv", tmp_path / "witness", tmp_path / "a", pristine.agents)


# ------------------------------------------------------------------ the attacker's tools
def db(log: Log) -> sqlite3.Connection:
    return sqlite3.connect(log.data / "audit.sqlite", isolation_level=None)


def entries(log: Log) -> list[Entry]:
    store = open_store(log.data)
    try:
        return list(store.entries())
    finally:
        store.close()


def rechain(log: Log, es: list[Entry], *, keep_heads_upto: int = 0) -> None:
    """Renumber and re-hash the chain (needs no key), keep the query columns plausible, delete
    every stored checkpoint and tree head beyond `keep_heads_upto`, and make the agents table
    agree: all a careful attacker with the database can do."""
    store = open_store(log.data)
    assert isinstance(store, SqlStore)
    try:
        prev, rows = GENESIS, []
        for i, e in enumerate(es, 1):
            h = entry_hash(prev, i, e.kind, e.received, e.record)
            rows.append((i, e.kind, e.received, json.dumps(e.record, ensure_ascii=False), h,
                         *(e.columns or (None,) * len(QUERY_COLS))))
            prev = h
        with store._tx() as cur:
            cur.execute("DELETE FROM entries")
            cur.executemany(f"INSERT INTO entries (gseq, kind, received, record, hash, {', '.join(QUERY_COLS)})"
                            f" VALUES ({', '.join(['?'] * 14)})", rows)
            cur.execute("UPDATE head SET size = ?, root = ?", (len(rows), prev))
            cur.execute("DELETE FROM checkpoints WHERE size > ?", (keep_heads_upto,))
            cur.execute("DELETE FROM tree_heads WHERE size > ?", (keep_heads_upto,))
    finally:
        store.close()
    sync_agents_table(log.data)


def verify(log: Log, *extra: str) -> tuple[int, str]:
    res = baomi("audit", "verify", "--data", str(log.data), *extra, check=False)
    return res.returncode, res.stdout + res.stderr


def witnessed(log: Log) -> tuple[str, ...]:
    return ("--witness", str(log.witness))


def kept(log: Log) -> tuple[str, ...]:
    return ("--agent-state", str(log.agent_a))


def named(out: str) -> int:
    m = re.search(r"first bad entry #(\d+)", out)
    assert m, out
    return int(m.group(1))


def first_event(es: list[Entry], agent: str, etype: str | None = None, skip: int = 0) -> Entry:
    found = [e for e in es if e.kind == "event" and e.record["agent"] == agent
             and (etype is None or e.record["type"] == etype)]
    return found[skip]


# ------------------------------------------------------------------ the intact log
def test_intact_log_verifies_with_witness_and_kept_heads(log: Log) -> None:
    rc, out = verify(log, *witnessed(log), *kept(log))
    assert rc == 0, out
    m = re.search(r"tree heads: (\d+) matched, (\d+) consecutive pairs proven consistent", out)
    assert m and int(m.group(1)) >= 4 and int(m.group(2)) >= 3, out
    head = json.loads((log.agent_a / "tree-head.json").read_text())
    assert head["agent"] == log.agents["ws-01"] and head["last_seq"] == N + 1
    assert head["tree_head"]["size"] == len(entries(log))  # a's last ack covered the whole log


# ------------------------------------------------------------------ the attacks
def test_lowered_level_column(log: Log) -> None:
    es = entries(log)
    target = first_event(es, log.agents["ws-01"], "finding", skip=2)
    q = ["audit", "query", "--data", str(log.data), "--level", "secret", "--format", "jsonl"]
    before = len(baomi(*q).stdout.splitlines())
    with db(log) as conn:
        conn.execute("UPDATE entries SET level = 1 WHERE gseq = ?", (target.gseq,))
    assert len(baomi(*q).stdout.splitlines()) == before - 1  # the attack: the query loses it
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq, out
    assert "column level" in out


@pytest.mark.parametrize("column,value", [("etype", "heartbeat"), ("host", "ws-99"),
                                          ("etime", "2020-01-01T00:00:00.000000Z"), ("rule", "BM-X999")])
def test_rewritten_query_column(log: Log, column: str, value: str) -> None:
    target = first_event(entries(log), log.agents["ws-01"], "finding", skip=3)
    with db(log) as conn:
        conn.execute(f"UPDATE entries SET {column} = ? WHERE gseq = ?", (value, target.gseq))
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq, out
    assert f"column {column}" in out


def test_rewritten_received_with_the_chain_rehashed(log: Log) -> None:
    """`received` is in the chain hash, but the chain is unkeyed: re-hashed from the edit on, with
    the stored heads deleted, the database alone says intact; the witness names the entry."""
    es = entries(log)
    target = first_event(es, log.agents["ws-02"], skip=2)
    es = [replace(e, received="2020-01-01T00:00:00.000000Z") if e.gseq == target.gseq else e for e in es]
    rechain(log, es)
    assert verify(log)[0] == 0
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq, out
    assert "witnessed" in out
    rc, out = verify(log, *kept(log))  # the agent's head alone: a range ending at its size
    assert rc == 1 and named(out) <= target.gseq, out


def test_erased_agent_with_its_enrolment_row(log: Log) -> None:
    es = entries(log)
    victim = log.agents["ws-03"]
    gone = [e for e in es if e.record.get("agent") == victim
            or e.record.get("notice", {}).get("agent") == victim]
    assert gone[0].kind == "enrol"
    rechain(log, [e for e in es if e not in gone])
    with db(log) as conn:
        conn.execute("DELETE FROM agents WHERE agent = ?", (victim,))
    assert verify(log)[0] == 0  # consistent without the agent: only evidence held elsewhere shows it
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == gone[0].gseq, out
    rc, out = verify(log, *kept(log))
    assert rc == 1, out


def test_enrolment_row_alone_erased(log: Log) -> None:
    """Erasing only the agents row (the chain keeps the agent) shows in the database itself."""
    es = entries(log)
    victim = log.agents["ws-03"]
    enrol = next(e for e in es if e.kind == "enrol" and e.record["agent"] == victim)
    with db(log) as conn:
        conn.execute("DELETE FROM agents WHERE agent = ?", (victim,))
    rc, out = verify(log)
    assert rc == 1 and named(out) == enrol.gseq and "no row in the agents table" in out, out


@pytest.mark.parametrize("evidence", ["witness", "agent"])
def test_truncated_tail_with_newer_checkpoints_deleted(log: Log, evidence: str) -> None:
    es = entries(log)
    keep = len(es) - 4
    rechain(log, es[:keep], keep_heads_upto=keep)
    assert verify(log)[0] == 0
    rc, out = verify(log, *(witnessed(log) if evidence == "witness" else kept(log)))
    assert rc == 1 and named(out) == keep + 1, out
    assert "truncated" in out


def test_swapped_agent_key(log: Log) -> None:
    es = entries(log)
    agent = log.agents["ws-01"]
    enrol = next(e for e in es if e.kind == "enrol" and e.record["agent"] == agent)
    with db(log) as conn:
        conn.execute("UPDATE agents SET public_key = ? WHERE agent = ?",
                     (public_key_b64(generate_private_key()), agent))
    rc, out = verify(log)
    assert rc == 1 and named(out) == enrol.gseq, out
    assert "another public key" in out


# ------------------------------------------------------------------ records
def test_edited_record(log: Log) -> None:
    es = entries(log)
    target = first_event(es, log.agents["ws-01"], "finding", skip=4)
    rec = dict(target.record)
    rec["payload"] = {**rec["payload"], "path": "/home/u/harmless.txt"}
    with db(log) as conn:
        conn.execute("UPDATE entries SET record = ? WHERE gseq = ?",
                     (json.dumps(rec, ensure_ascii=False), target.gseq))
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq, out


def test_inserted_record(log: Log) -> None:
    """A replayed copy of a genuine, validly signed event inserted further on, chain re-hashed."""
    es = entries(log)
    copy = first_event(es, log.agents["ws-02"], skip=1)
    at = first_event(es, log.agents["ws-02"], skip=5).gseq - 1  # 0-based index to insert before
    rechain(log, es[:at] + [replace(copy, columns=None)] + es[at:])
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == at + 1, out


def test_deleted_record(log: Log) -> None:
    es = entries(log)
    target = first_event(es, log.agents["ws-02"], skip=3)
    rechain(log, [e for e in es if e.gseq != target.gseq])
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq, out


def test_reordered_records_of_two_agents(log: Log) -> None:
    """Two neighbouring entries of different agents swapped: each agent's own chain is intact,
    the re-hashed global chain too; the witness names the first moved entry."""
    es = entries(log)
    i = next(k for k in range(len(es) - 1) if es[k].kind == es[k + 1].kind == "event"
             and es[k].record["agent"] != es[k + 1].record["agent"] and k > 6)
    es[i], es[i + 1] = es[i + 1], es[i]
    rechain(log, es)
    assert verify(log)[0] == 0
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == i + 1, out


# ------------------------------------------------------------------ checkpoints
def test_forged_tree_head_in_the_database(log: Log) -> None:
    """The attacker truncates and signs a head for the shorter log with a key of their own."""
    es = entries(log)
    keep = len(es) - 3
    rechain(log, es[:keep])
    from reports.merkle import MerkleTree

    tree = MerkleTree(bytes.fromhex(e.hash) for e in entries(log))
    forged = TreeHead.make(generate_private_key(), keep, tree.root(), "2026-12-05T00:00:00Z")
    store = open_store(log.data)
    store.add_tree_head(forged)
    store.close()
    rc, out = verify(log)
    assert rc == 1 and "forged tree head" in out and f"size {keep}" in out, out


def test_tree_head_edited_in_the_database(log: Log) -> None:
    with db(log) as conn:
        size = conn.execute("SELECT max(size) FROM tree_heads").fetchone()[0]
        conn.execute("UPDATE tree_heads SET root = ? WHERE size = ?", ("00" * 32, size))
    rc, out = verify(log)
    assert rc == 1 and "forged tree head" in out, out


def test_forged_head_in_an_agent_state_is_refused(log: Log) -> None:
    path = log.agent_a / "tree-head.json"
    obj = json.loads(path.read_text())
    obj["tree_head"]["size"] += 5
    path.write_text(json.dumps(obj))
    rc, out = verify(log, *kept(log))
    assert rc == 1 and "forged tree head" in out, out


def test_witness_that_saw_the_log_change(log: Log) -> None:
    """The collector restarted on a rewritten database publishes the new history to the same
    witness: the witness itself then holds the proof, naming the changed entry."""
    es = entries(log)
    target = first_event(es, log.agents["ws-01"], skip=1)
    es = [replace(e, received="2020-01-01T00:00:00.000000Z") if e.gseq == target.gseq else e for e in es]
    rechain(log, es[:-1])
    from reports.server import load_data
    from reports.witness import TreeKeeper

    store = open_store(log.data)
    try:
        TreeKeeper(store, load_data(log.data).checkpoint_key, [log.witness]).checkpoint()  # type: ignore[arg-type]
    finally:
        store.close()
    rc, out = verify(log, *witnessed(log))
    assert rc == 1 and named(out) == target.gseq and "changed between heads" in out, out

