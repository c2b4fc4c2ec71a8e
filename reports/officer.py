"""Officer-side access to the log: the local store (`--data DIR`) or a running collector (`--server`).

Both sources offer the same reads, so `baomi audit verify|query|export` work against either;
online verification downloads the raw chain and checks it here, trusting nothing the server says.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from reports.chain import Checkpoint, Entry
from reports.merkle import TreeHead
from reports.store import AuditStore, Query
from reports.tls import client_context


class LogSource(Protocol):
    def entries(self, after: int = 0) -> Iterator[Entry]: ...
    def checkpoints(self) -> list[Checkpoint]: ...
    def tree_heads(self) -> list[TreeHead]: ...
    def query(self, q: Query) -> Iterator[dict[str, Any]]: ...
    def checkpoint_now(self) -> list[Checkpoint]: ...
    def close(self) -> None: ...


class StoreSource:
    def __init__(self, store: AuditStore, server_key: Any = None):
        self.store = store
        self.server_key = server_key

    def entries(self, after: int = 0) -> Iterator[Entry]:
        return self.store.entries(after)

    def checkpoints(self) -> list[Checkpoint]:
        return self.store.checkpoints()

    def tree_heads(self) -> list[TreeHead]:
        return self.store.tree_heads()

    def query(self, q: Query) -> Iterator[dict[str, Any]]:
        return self.store.query(q)

    def checkpoint_now(self) -> list[Checkpoint]:
        from reports.server import make_checkpoint

        if self.server_key is None:
            raise ValueError("the server key is needed to sign a checkpoint")
        make_checkpoint(self.store, self.server_key)
        return self.store.checkpoints()

    def close(self) -> None:
        self.store.close()


class ServerSource:
    """A running collector, read with the officer's bearer token."""

    def __init__(self, url: str, token: str, ca: str | Path | None = None, timeout: float = 60.0):
        from reports.client import require_tls

        require_tls(url)  # the officer token never travels in clear text beyond this machine
        verify: Any = client_context(ca) if url.startswith("https:") else True
        self.http = httpx.Client(base_url=url, verify=verify, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def _get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        resp.raise_for_status()
        return resp.json()

    def entries(self, after: int = 0) -> Iterator[Entry]:
        while True:
            rows = self._get("/v1/entries", after=after, limit=5000)["entries"]
            for r in rows:
                yield Entry.from_dict(r)
            if not rows:
                return
            after = int(rows[-1]["gseq"])

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_dict(c) for c in self._get("/v1/checkpoints")["checkpoints"]]

    def tree_heads(self) -> list[TreeHead]:
        return [TreeHead.from_dict(t) for t in self._get("/v1/tree-heads")["tree_heads"]]

    def query(self, q: Query) -> Iterator[dict[str, Any]]:
        """Every matching row: the collector answers a page at a time, `next` is the cursor."""
        params = dict(q.__dict__)
        remaining = q.limit or None
        while remaining is None or remaining > 0:
            reply = self._get("/v1/query", **{**params, "limit": remaining})
            rows = reply["rows"][:remaining]
            yield from rows
            if remaining is not None:
                remaining -= len(rows)
            if reply.get("next") is None or not rows:
                return
            params["after"] = int(reply["next"])

    def checkpoint_now(self) -> list[Checkpoint]:
        resp = self.http.post("/v1/checkpoints")
        resp.raise_for_status()
        return [Checkpoint.from_dict(c) for c in resp.json()["checkpoints"]]

    def close(self) -> None:
        self.http.close()
