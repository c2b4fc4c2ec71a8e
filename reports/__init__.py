"""The central audit log: schema, tamper evidence, storage, collector, client, export, reports.

    events.py    AuditEvent (signed, per-agent hash chain), GapNotice, payload rules
    chain.py     global chain entries, signed checkpoints, verify_entries()
    merkle.py    RFC 9162 Merkle tree, proofs and signed tree heads over the chain
    witness.py   the collector's tree heads, witness directories, checkpoint key rotation
    store.py     AuditStore interface, SQLite backend, open_store(); store_pg.py: PostgreSQL
    server.py    the collector (starlette/uvicorn): `baomi server init|run|enroll-token`
    client.py    AuditClient: durable spool and delivery, used by the agent
    officer.py   reading the log from a data dir or a running collector
    siem.py      syslog RFC 5424 / CEF forwarding;  render.py: HTML officer report
    tls.py       private CA and server certificate;  testing.py: temp PostgreSQL
    cli.py       click groups `server`, `audit`, `report` (loaded lazily by agents.main)

Importing `reports` or `reports.cli` loads none of the server stack.
"""
