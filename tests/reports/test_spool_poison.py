"""Issue 14, item 2: the client spool never wedges. An event the collector refuses for its content
(here: spooled by an older client that let a time without a zone, or a NaN, through) used to make
every flush fail with the same 4xx, so no later event of that spool was ever delivered."""
from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

from policies.keys import sign
from reports.client import AuditClient
from reports.events import AuditEvent
from tests.reports.audit_helpers import Collector, baomi


def _spool_raw(client: AuditClient, time: str, payload: dict) -> int:
    """Spool a signed event as an older, laxer client would have (no schema check)."""
    with client._lock:
        seq = int(client._meta("last_seq", "0")) + 1
        ev = AuditEvent(v=1, id=str(uuid.uuid4()), agent=client.agent, seq=seq, time=time, type="device",
                        payload=payload, prev=client._meta("last_hash", "0" * 64))
        ev = dataclasses.replace(ev, sig=sign(client.key, ev.body_bytes()))
        client._db.execute("INSERT INTO outbox (seq, record) VALUES (?, ?)", (seq, json.dumps(ev.to_dict())))
        client._set("last_seq", seq)
        client._set("last_hash", ev.hash)
    return seq


def test_poison_events_are_set_aside_with_a_gap_notice(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "agent", batch_size=50)
    try:
        for i in range(2):
            client.submit("device", {"id": f"usb-{i}"})
        naive = _spool_raw(client, "2026-12-05T10:00:00", {"id": "naive-time"})  # the collector: 422
        for i in range(2, 4):
            client.submit("device", {"id": f"usb-{i}"})
        nan = _spool_raw(client, "2026-12-05T10:00:00Z", {"size": float("nan")})  # not even JSON
        for i in range(4, 6):
            client.submit("device", {"id": f"usb-{i}"})
        res = client.flush(timeout=60)
        assert res.pending == 0 and res.set_aside == 2 and res.acked == 6
        aside = client.rejected()
        assert [r["seq"] for r in aside] == [naive, nan]
        assert aside[0]["status"] == 422 and aside[1]["status"] == 0
        # later events keep flowing
        client.submit("device", {"id": "after"})
        assert client.flush(timeout=30).pending == 0
        with collector.http(role="auditor") as h:
            rows = h.get("/v1/query").json()["rows"]
            entries = h.get("/v1/entries").json()["entries"]
        assert [r["payload"]["id"] for r in rows] == [f"usb-{i}" for i in range(6)] + ["after"]
        gaps = [e["record"]["notice"] for e in entries if e["kind"] == "gap"]
        assert [(g["first"], g["last"], g["reason"]) for g in gaps] == [(naive, naive, "rejected"),
                                                                        (nan, nan, "rejected")]
        # the chain holds: the gap notices are signed by the agent and bridge its own chain
        out = baomi("audit", "verify", "--data", str(collector.data))
        assert out.returncode == 0
    finally:
        client.close()


def test_a_refusal_that_is_not_the_events_fault_sets_nothing_aside(collector: Collector,
                                                                    tmp_path: Path) -> None:
    """If the collector refuses even a batch without events, no event is to blame: nothing is set
    aside and the flush reports the refusal (here: a spool whose gap notice is out of range)."""
    import pytest

    from reports.client import DeliveryError

    client = collector.enroll(tmp_path / "agent")
    try:
        client.submit("device", {"id": "usb"})
        with client._lock:
            client._set("gap_first", 1)
            client._set("gap_last", 2 ** 60)
        with pytest.raises(DeliveryError) as err:
            client.flush(timeout=10)
        assert err.value.status == 422
        assert client.pending() == 1 and client.rejected() == []
    finally:
        client.close()
