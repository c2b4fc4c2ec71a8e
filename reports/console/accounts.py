"""Console users and sessions, kept in the collector's store (SQLite or PostgreSQL).

Three roles with separate credentials: `officer` (reads findings, records follow-ups),
`auditor` (reads, verifies the chain, exports) and `admin` (agents, users). Passwords are
hashed with Argon2id (argon2-cffi); a session is a random token in an HttpOnly cookie whose
SHA-256 alone is stored, with its own CSRF token, an idle timeout and an absolute lifetime, so
every process of a pre-forked collector sees the same sessions.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from reports.store import SqlStore

ROLES = ("officer", "auditor", "admin")
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
#: Verified against when the user does not exist, so a wrong name costs as much as a wrong password.
_DUMMY = _HASHER.hash("baomi-console-no-such-user")


class AccountError(ValueError):
    """Bad user input (role, name, password, time zone)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    tz: str
    lang: str


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def check_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise AccountError(f"unknown time zone {tz!r} (e.g. Asia/Shanghai)") from None
    return tz


def add_user(store: SqlStore, name: str, role: str, password: str, tz: str = "Asia/Shanghai",
             lang: str = "zh") -> User:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountError("a user name is 1-64 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if lang not in ("zh", "en"):
        raise AccountError("language must be zh or en")
    check_tz(tz)
    with store._tx() as cur:  # noqa: SLF001 - the console's tables live in the store it belongs with
        cur.execute(store._sql("SELECT 1 FROM console_users WHERE name = ?"), (name,))  # noqa: SLF001
        if cur.fetchone() is not None:
            raise AccountError(f"user {name!r} exists")
        cur.execute(store._sql("INSERT INTO console_users (name, role, pwhash, tz, lang, created) "  # noqa: SLF001
                               "VALUES (?, ?, ?, ?, ?, ?)"), (name, role, _HASHER.hash(password), tz, lang, _iso(_now())))
    return User(name, role, tz, lang)


def users(store: SqlStore) -> list[tuple[User, str | None]]:
    with store._read() as cur:  # noqa: SLF001
        cur.execute(store._sql("SELECT name, role, tz, lang, disabled FROM console_users ORDER BY name"))  # noqa: SLF001
        return [(User(n, r, t, lg), d) for n, r, t, lg, d in cur.fetchall()]


def disable_user(store: SqlStore, name: str) -> bool:
    """Disable a user and end their sessions at once."""
    with store._tx() as cur:  # noqa: SLF001
        cur.execute(store._sql("UPDATE console_users SET disabled = ? WHERE name = ? AND disabled IS NULL"),  # noqa: SLF001
                    (_iso(_now()), name))
        done = bool(cur.rowcount == 1)
        cur.execute(store._sql("DELETE FROM console_sessions WHERE name = ?"), (name,))  # noqa: SLF001
    return done


def login(store: SqlStore, name: str, password: str) -> tuple[str, Session] | None:
    """A new session (cookie value, session) for right credentials, else None."""
    with store._read() as cur:  # noqa: SLF001
        cur.execute(store._sql("SELECT role, pwhash, tz, lang FROM console_users "  # noqa: SLF001
                               "WHERE name = ? AND disabled IS NULL"), (name,))
        row = cur.fetchone()
    try:
        _HASHER.verify(row[1] if row else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    sid, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), _iso(_now())
    with store._tx() as cur:  # noqa: SLF001
        cur.execute(store._sql("DELETE FROM console_sessions WHERE created < ?"), (_iso(_now() - LIFETIME),))  # noqa: SLF001
        cur.execute(store._sql("INSERT INTO console_sessions (sid_hash, name, csrf, created, seen) "  # noqa: SLF001
                               "VALUES (?, ?, ?, ?, ?)"), (_sid_hash(sid), name, csrf, now, now))
    return sid, Session(User(name, row[0], row[2], row[3]), csrf)


def session(store: SqlStore, sid: str | None) -> Session | None:
    """The live session of a cookie value; touching it extends the idle timeout."""
    if not sid or len(sid) > 100:
        return None
    h, now = _sid_hash(sid), _now()
    with store._read() as cur:  # noqa: SLF001
        cur.execute(store._sql(  # noqa: SLF001
            "SELECT s.csrf, s.created, s.seen, u.name, u.role, u.tz, u.lang FROM console_sessions s "
            "JOIN console_users u ON u.name = s.name WHERE s.sid_hash = ? AND u.disabled IS NULL"), (h,))
        row = cur.fetchone()
    if row is None:
        return None
    csrf, created, seen, name, role, tz, lang = row
    parse = datetime.fromisoformat
    if now - parse(created.replace("Z", "+00:00")) > LIFETIME or now - parse(seen.replace("Z", "+00:00")) > IDLE:
        logout(store, sid)
        return None
    if now - parse(seen.replace("Z", "+00:00")) > timedelta(minutes=1):  # one write a minute, not per page
        with store._tx() as cur:  # noqa: SLF001
            cur.execute(store._sql("UPDATE console_sessions SET seen = ? WHERE sid_hash = ?"), (_iso(now), h))  # noqa: SLF001
    return Session(User(name, role, tz, lang), csrf)


def logout(store: SqlStore, sid: str | None) -> None:
    if sid:
        with store._tx() as cur:  # noqa: SLF001
            cur.execute(store._sql("DELETE FROM console_sessions WHERE sid_hash = ?"), (_sid_hash(sid),))  # noqa: SLF001
