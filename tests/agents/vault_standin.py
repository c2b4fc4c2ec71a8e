"""Temporary stand-in for `agents.vault` (written by another helper) with the agreed interface:
`Vault(path, officer_pub).seal(src, *, reason) -> SealedItem`, `VaultError`. Used by the agent
tests only while the real module is absent (`vault_module()` prefers the real one)."""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class VaultError(RuntimeError):
    pass


@dataclass(frozen=True)
class SealedItem:
    id: str
    sha256: str
    original_path: str
    size: int
    mode: int
    sealed_at: str


class Vault:
    def __init__(self, path: Path, officer_pub: Path):
        self.path = Path(path)
        pub = serialization.load_pem_public_key(Path(officer_pub).read_bytes())
        if not isinstance(pub, X25519PublicKey):
            raise VaultError("officer key is not X25519")
        self.pub = pub

    def seal(self, src: Path, *, reason: dict[str, Any]) -> SealedItem:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read()
        finally:
            os.close(fd)
        eph = X25519PrivateKey.generate()
        key = HKDF(SHA256(), 32, None, b"baomi-vault-standin").derive(eph.exchange(self.pub))
        nonce = os.urandom(12)
        blob = ChaCha20Poly1305(key).encrypt(nonce, data, None)
        item = SealedItem("q-" + uuid.uuid4().hex[:16], hashlib.sha256(data).hexdigest(), str(src), len(data),
                          st.st_mode & 0o7777, datetime.now(UTC).isoformat())
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = self.path / f"{item.id}.sealed"
        eph_pub = eph.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            with open(out, "wb") as fh:
                fh.write(eph_pub + nonce + blob)
                fh.flush()
                os.fsync(fh.fileno())
            (self.path / f"{item.id}.json").write_text(json.dumps({**item.__dict__, "reason": reason}))
        except OSError as exc:
            raise VaultError(str(exc)) from exc
        os.unlink(src)
        return item


def officer_keypair(prefix: Path) -> tuple[Path, Path]:
    """PREFIX.key / PREFIX.pub: the real `baomi quarantine keygen` when available, else here."""
    k = X25519PrivateKey.generate()
    key, pub = prefix.with_suffix(".key"), prefix.with_suffix(".pub")
    key.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, pub


def vault_module() -> ModuleType | None:
    """The real agents.vault when it exists."""
    try:
        return importlib.import_module("agents.vault")
    except ImportError:
        return None
