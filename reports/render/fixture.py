"""A realistic audit log built through the real store and ingest code, for the report tests,
the benchmark and demos: agents enrol (server-signed), sign and chain their events, one admits
a gap, one goes silent, officers record follow-ups."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.keys import generate_private_key, public_key_b64
from reports.chain import server_signed
from reports.events import GENESIS, GapNotice, make_event, utcnow
from reports.store import AgentInfo, AuditStore

LEVELS = ("top_secret", "secret", "confidential")
RULES = ("CN-MARK-01", "CN-MARK-02", "BABU-03", "CAPCO-01")
CHANNELS = ("usb", "share", "mail", "local")


@dataclass
class _Agent:
    key: Any
    agent: str
    host: str
    seq: int = 0
    prev: str = GENESIS


class LogBuilder:
    def __init__(self, store: AuditStore, server_key: Any):
        self.store, self.server_key = store, server_key
        self.agents: dict[str, _Agent] = {}
        self._pending: list[tuple[str, list[Any], Any, str, str]] = []

    def enrol(self, host: str, when: str | None = None) -> _Agent:
        key = generate_private_key()
        a = _Agent(key, f"a-{host}", host)
        rec = server_signed(self.server_key, {"kind": "enrol", "agent": a.agent, "public_key": public_key_b64(key),
                                              "hostname": host, "time": when or utcnow()})
        self.store.enrol(AgentInfo(a.agent, public_key_b64(key), host, utcnow(), 0, ""), rec, utcnow())
        self.agents[host] = a
        return a

    def events(self, host: str, items: list[tuple[str, dict[str, Any], str]]) -> list[str]:
        """Sign and ingest (type, payload, time) items for one host in batches; returns event ids."""
        a = self.agents[host]
        ids, batch = [], []
        for etype, payload, when in items:
            a.seq += 1
            ev = make_event(a.key, a.agent, a.seq, a.prev, etype, payload, time=when)
            a.prev = ev.hash
            ids.append(ev.id)
            batch.append(ev)
            if len(batch) == 1000:
                self._ingest(a, batch)
                batch = []
        if batch:
            self._ingest(a, batch)
        return ids

    def gap(self, host: str, count: int, reason: str = "spool overflow") -> None:
        a = self.agents[host]
        notice = GapNotice(a.agent, a.seq + 1, a.seq + count, a.prev, reason).signed(a.key)
        rec = server_signed(self.server_key, {"kind": "gap", "agent": a.agent, "notice": notice.to_dict(),
                                              "time": utcnow()})
        res = self.store.ingest(a.agent, [], rec, str(uuid.uuid4()), utcnow())
        assert res.status == "ok", res
        a.seq += count

    def _ingest(self, a: _Agent, batch: list[Any]) -> None:
        res = self.store.ingest(a.agent, batch, None, str(uuid.uuid4()), utcnow())
        assert res.status == "ok", res


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_sample_log(store: AuditStore, server_key: Any, n_findings: int = 100,
                     now: datetime | None = None, hostile_name: str = "<script>alert(1)</script>.docx") -> dict[str, Any]:
    """The fixture log; returns the figures a report of it must state."""
    now = now or datetime.now(UTC)
    b = LogBuilder(store, server_key)
    for h in ("ws-01", "ws-02", "ws-03", "ws-silent"):
        b.enrol(h)
    hosts = ("ws-01", "ws-02", "ws-03")
    per_host: dict[str, list[tuple[str, dict[str, Any], str]]] = {h: [] for h in hosts}
    expected: dict[str, Any] = {"level": {}, "rule": {}, "host": {}, "channel": {}}
    for i in range(n_findings):
        h, lvl, rule, ch = hosts[i % 3], LEVELS[i % 3], RULES[i % 4], CHANNELS[i % 4]
        t = iso(now - timedelta(hours=2 + i * 3))
        path = hostile_name if i == 0 else f"/home/u/docs/文件{i}.docx"
        etype = "violation" if i % 10 == 0 else "finding"
        per_host[h].append((etype, {"path": path, "level": lvl, "rule": rule, "channel": ch,
                                    "marking": f"{ {'top_secret': '绝密', 'secret': '机密', 'confidential': '秘密'}[lvl]}★10年",
                                    "sha256": f"{i:064x}"}, t))
        for k, v in (("level", lvl), ("rule", rule), ("host", h), ("channel", ch)):
            expected[k][v] = expected[k].get(v, 0) + 1
    ids = {h: b.events(h, per_host[h]) for h in hosts}
    violations = [ids[h][j] for h in hosts for j, it in enumerate(per_host[h]) if it[0] == "violation"]
    # Media: one stick on two hosts (cross-use), one on a single host.
    b.events("ws-01", [("device", {"medium": "USB-SN-AAA", "channel": "usb"}, iso(now - timedelta(hours=1)))])
    b.events("ws-02", [("device", {"medium": "USB-SN-AAA", "channel": "usb"}, iso(now - timedelta(hours=1))),
                       ("device", {"medium": "USB-SN-BBB", "channel": "usb"}, iso(now - timedelta(hours=1)))])
    # Follow-ups (督办) through the console's own path (server-signed chain entries): one
    # rectified, one assigned and overdue, one assigned in time.
    from reports.followup import record_step
    from reports.store import Query, SqlStore

    assert isinstance(store, SqlStore)
    gseq = {r["event_id"]: r["gseq"] for r in store.query(Query(type="violation"))}
    day_past, day_future = (now - timedelta(days=2)).date().isoformat(), (now + timedelta(days=5)).date().isoformat()
    for vid, owner, deadline in ((violations[0], "张三", day_future), (violations[1], "李四", day_past),
                                 (violations[2], "王五", day_future)):
        record_step(store, server_key, "assign", gseq[vid], "officer1", "officer", owner=owner, deadline=deadline)
    record_step(store, server_key, "rectify", gseq[violations[0]], "officer1", "officer",
                rectification="文件已删除，介质已送销", explanation="误拷贝")
    b.events("ws-01", [
        ("attestation", {"user": "zhao", "kind": "babu", "due": iso(now - timedelta(days=7))}, iso(now - timedelta(days=30))),
        ("attestation", {"user": "qian", "kind": "babu", "due": iso(now + timedelta(days=7))}, iso(now - timedelta(days=3))),
        ("heartbeat", {}, iso(now - timedelta(minutes=5))),
    ])
    b.events("ws-03", [("heartbeat", {}, iso(now - timedelta(minutes=5)))])
    b.events("ws-silent", [("heartbeat", {}, iso(now - timedelta(days=3)))])
    b.gap("ws-02", 5)
    b.events("ws-02", [("heartbeat", {}, iso(now - timedelta(minutes=5)))])
    from reports.server import make_checkpoint

    make_checkpoint(store, server_key)  # the signed checkpoint the report checks the chain against
    expected.update(findings=n_findings, violations=len(violations), open=len(violations) - 1, rectified=1,
                    overdue_followups=1, overdue_attestations=1, media=2, cross_use=1, silent=["a-ws-silent"],
                    gaps=1, violation_ids=violations)
    return expected
