"""PostgreSQL at scale: several collector processes appending to one database keep one intact
chain; an agent may switch collectors between batches."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from audit_helpers import Collector, Postgres, baomi

from reports.client import AuditClient
from reports.server import init_data
from reports.store import open_store


def test_two_collectors_share_one_database(postgres: Postgres, tmp_path: Path) -> None:
    db = postgres.new_database()
    data = tmp_path / "srv"
    init_data(data, db_url=db)
    c1 = Collector(data, db).start()
    c2 = Collector(data, db).start()
    clients: list[AuditClient] = []
    try:
        for i in range(6):
            target = (c1, c2)[i % 2]
            clients.append(target.enroll(tmp_path / f"a{i}", batch_size=20))
        ids: set[str] = set()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def run(client: AuditClient) -> None:
            try:
                for i in range(150):
                    ev = client.submit("finding", {"path": f"/s/{i}", "level": "internal"})
                    with lock:
                        ids.add(ev.id)
                    if i % 25 == 24:
                        assert client.flush().pending == 0
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(cl,)) for cl in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        # Agent 0 now moves to the other collector for its next batch.
        state = json.loads((tmp_path / "a0" / "state.json").read_text())
        state["server"] = c2.url
        (tmp_path / "a0" / "state.json").write_text(json.dumps(state))
        clients[0].close()
        clients[0] = AuditClient(tmp_path / "a0")
        ids.add(clients[0].submit("agent_stop", {}).id)
        assert clients[0].flush().pending == 0
    finally:
        for cl in clients:
            cl.close()
        c1.stop()
        c2.stop()
    store = open_store(data, db)
    try:
        events = [e.record for e in store.entries() if e.kind == "event"]
        assert store.backend == "postgresql"
    finally:
        store.close()
    assert sorted(e["id"] for e in events) == sorted(ids) and len(events) == 6 * 150 + 1
    out = baomi("audit", "verify", "--data", str(data), "--db", db).stdout
    assert "log intact" in out and "6 agents" in out
