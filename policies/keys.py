"""Ed25519 keys, canonical JSON and signatures: the one signing helper of the project.

Officers sign policy bundles and approvals with it; agents and the collector sign audit events
with it (reports imports this module). Keys are PEM files (PKCS#8 private, SPKI public);
signatures and public keys travel as base64 text; a key id is the first 16 hex digits of the
SHA-256 of the raw public key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes to sign: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_temp_beside(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """`data` written and fsynced to a fresh temp file beside `path`, for the caller to move into
    place (os.replace) or link (os.link). The name is unpredictable and opened O_EXCL|O_NOFOLLOW:
    a symlink planted at a fixed temp path (`KEY.tmp` → a file of the attacker's choosing) once
    received a private key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def save_private_key(key: Ed25519PrivateKey, path: str | Path) -> None:
    """Write a private key readable by its owner only (0600), created atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = write_temp_beside(path, pem)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")  # noqa: TRY004 (callers catch ValueError)
    return key


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(value: str | bytes | Path) -> Ed25519PublicKey:
    """Accept a PEM file path, PEM bytes, or a base64 raw key."""
    if isinstance(value, Path) or (isinstance(value, str) and os.path.exists(value)):
        value = Path(value).read_bytes()
    if isinstance(value, str):
        value = value.strip().encode("ascii")
    if value.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(value)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(value, validate=True))


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | str) -> str:
    b64 = key if isinstance(key, str) else public_key_b64(key)
    return hashlib.sha256(base64.b64decode(b64)).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode("ascii")


def verify(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
        return True
    except (InvalidSignature, ValueError):
        return False
