"""Limits that keep slow or greedy clients from taking the collector down (issue 14, item 2).

- **Header deadline.** uvicorn times out an idle keep-alive connection but never a request whose
  header arrives slowly: a few hundred TLS connections each sending one header line now and then
  (slowloris) held their file descriptors for good, and once the process ran out of them no
  agent could connect. `deadline_protocol()` gives uvicorn's own HTTP protocol a deadline for
  the header, armed when a connection opens or a request begins and not reset by trickled bytes.
- **Body deadline.** The app reads a body within `body_timeout` seconds in all (`server._json`),
  else answers 408 and closes the connection.
- **Connection cap.** uvicorn's `limit_concurrency` answers 503 (agents retry) beyond
  `max_connections`, kept below the file-descriptor limit so that a flood meets a 503 rather than
  a failing `accept()`; `raise_nofile()` lifts the soft descriptor limit to the hard one first.
- **Per-agent rate.** `RateLimiter`: a token bucket per authenticated agent; a batch beyond it
  gets 429 with Retry-After. Each worker process has its own buckets (`--workers N` allows N
  times the rate; the database's head lock serialises the writes anyway).
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

#: Bytes a request's header may take (httptools sets no bound of its own).
MAX_HEADER_BYTES = 64 * 1024
#: Descriptors kept for the database, logs and the listening socket when sizing the cap.
FD_RESERVE = 64


@dataclass(frozen=True)
class ServeLimits:
    """What `baomi server run` enforces; every field has a `--option` of the same name."""

    #: Seconds a client has to send a request's whole header (line and fields).
    header_timeout: float = 10.0
    #: Seconds a client has to send a request's whole body.
    body_timeout: float = 60.0
    #: Open connections beyond which requests get 503 (None: only the descriptor limit).
    max_connections: int | None = 2000
    #: Batches a second each agent may send on average, and the burst it may send at once.
    agent_rate: float = 20.0
    agent_burst: int = 60
    #: Most rows one /v1/query page holds; more are reached by the cursor.
    page_limit: int = 1000

    def __post_init__(self) -> None:
        if self.header_timeout <= 0 or self.body_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.agent_rate <= 0 or self.agent_burst < 1:
            raise ValueError("agent rate must be positive and the burst at least 1")
        if self.page_limit < 1 or (self.max_connections is not None and self.max_connections < 1):
            raise ValueError("page limit and connection cap must be at least 1")


def parse_rate(text: str) -> tuple[float, int]:
    """`20` or `20/60` (rate per second / burst) → (rate, burst); the burst defaults to 3 s worth."""
    rate_s, _, burst_s = text.partition("/")
    try:
        rate = float(rate_s)
        burst = int(burst_s) if burst_s else max(1, math.ceil(rate * 3))
    except ValueError:
        raise ValueError(f"bad rate {text!r} (use e.g. 20 or 20/60: batches a second / burst)") from None
    if not (rate > 0 and math.isfinite(rate)) or burst < 1:
        raise ValueError(f"bad rate {text!r}: the rate must be positive, the burst at least 1")
    return rate, burst


def raise_nofile() -> int:
    """Lift the soft descriptor limit to the hard one (a service's soft limit is often 1024);
    return the soft limit in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def connection_cap(limits: ServeLimits, nofile: int) -> int:
    """The cap handed to uvicorn: the configured one, never above what descriptors allow."""
    room = max(16, nofile - FD_RESERVE)
    return min(limits.max_connections, room) if limits.max_connections else room


def deadline_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a header deadline (see the module docstring)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _header_bytes = 0

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            self._header_bytes = 0
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._deadline is not None:  # still inside a header: bound its size too
                self._header_bytes = self._header_bytes + len(data)
                if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                    self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


class RateLimiter:
    """Token buckets, one per key: `take(key)` is 0.0 when allowed, else the seconds to wait."""

    #: Buckets kept at most; full (idle) ones are forgotten first, so memory stays bounded.
    MAX_KEYS = 100_000

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic):
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()  # called from the verify worker threads

    def take(self, key: str, cost: float = 1.0) -> float:
        now = self.clock()
        with self._lock:
            if key not in self._buckets and len(self._buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        for k, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[k]
