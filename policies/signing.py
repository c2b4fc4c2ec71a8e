"""Signed policy bundles and detached signatures, on top of `policies.keys`.

- A **bundle** (`baomi policy sign … -o bundle.json`) is one JSON file holding the exact bytes
  (as UTF-8 text) of its member files — packs and approval registers, in precedence order —
  with their SHA-256, the signer's key id and public key, and an Ed25519 signature over the
  canonical JSON of everything else. Changing one byte, removing or reordering a member, or
  re-signing with a key that is not trusted makes `verify_bundle` refuse it.
- A **detached signature** (`FILE.sig`) signs one file's SHA-256 the same way; the approvals
  register is signed like this so that officers can add approvals without re-issuing the bundle.

Trust is decided by the verifier's list of trusted public keys, never by the key embedded in
the signed object (that one is informational).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from policies import keys
from scanner.i18n import tr

BUNDLE_FORMAT = 1
SIG_FORMAT = 1
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


class SignatureError(ValueError):
    """A bundle or file is unsigned, altered, or signed by a key that is not trusted."""


@dataclass(frozen=True)
class BundleFile:
    name: str
    text: str
    sha256: str


@dataclass(frozen=True)
class Bundle:
    files: tuple[BundleFile, ...]
    key_id: str
    created: str
    source: str
    #: Monotonic per signer (default: the signing time in seconds); 0 for bundles made before
    #: versions existed. `policies.hwm` refuses one older than a version accepted before.
    version: int = 0
    #: ISO time after which the bundle is refused ("" for bundles made before expiry existed).
    expires: str = ""


#: How long a bundle stays valid unless `baomi policy sign --expires DAYS` says otherwise.
DEFAULT_VALID_DAYS = 365


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def trusted_key_map(trusted_keys: Iterable[Any]) -> dict[str, Ed25519PublicKey]:
    """key id → public key, from PEM paths, PEM bytes, base64 raw keys or key objects."""
    out: dict[str, Ed25519PublicKey] = {}
    for k in trusted_keys:
        if isinstance(k, Ed25519PrivateKey):
            k = k.public_key()
        if not isinstance(k, Ed25519PublicKey):
            try:
                k = keys.load_public_key(k)
            except (ValueError, OSError) as exc:
                raise SignatureError(tr(f"无法读取受信任公钥 {k!r}：{exc}", f"cannot read trusted key {k!r}: {exc}")) from None
        out[keys.key_id(k)] = k
    return out


def make_bundle(files: list[tuple[str, bytes]], key: Ed25519PrivateKey, created: str | None = None,
                version: int | None = None, valid_days: int = DEFAULT_VALID_DAYS) -> dict[str, Any]:
    members = []
    for name, data in files:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError(tr(f"{name}：不是 UTF-8 文本", f"{name}: not UTF-8 text")) from None
        members.append({"name": name, "sha256": sha256_hex(data), "text": text})
    created = created or _now()
    when = _parse_time(created)
    if valid_days <= 0:
        raise SignatureError(tr("有效期必须为正数天", "the validity must be a positive number of days"))
    body: dict[str, Any] = {"baomi_bundle": BUNDLE_FORMAT, "created": created,
                            "version": int(when.timestamp()) if version is None else int(version),
                            "expires": (when + timedelta(days=valid_days)).isoformat(),
                            "files": members, "key_id": keys.key_id(key),
                            "public_key": keys.public_key_b64(key)}
    body["signature"] = keys.sign(key, keys.canonical_json(body))
    return body


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(tr(f"时间格式无效：{text!r}", f"bad time: {text!r}")) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _check_signed(body: Any, what: str, trusted: dict[str, Ed25519PublicKey], require: bool) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("signature"), str):
        raise SignatureError(tr(f"{what}：未签名", f"{what}: not signed"))
    payload = keys.canonical_json({k: v for k, v in body.items() if k != "signature"})
    kid = body.get("key_id")
    if trusted:
        pub = trusted.get(kid) if isinstance(kid, str) else None
        if pub is None:
            raise SignatureError(tr(f"{what}：签名密钥 {kid!r} 不在受信任公钥之列", f"{what}: signed by key {kid!r}, which is not a trusted key"))
    elif require:
        raise SignatureError(tr(f"{what}：要求签名，但未提供受信任公钥", f"{what}: a signature is required but no trusted key was given"))
    else:
        try:
            pub = keys.load_public_key(str(body.get("public_key", "")))
        except (ValueError, TypeError):
            raise SignatureError(tr(f"{what}：内嵌公钥无效", f"{what}: bad embedded public key")) from None
        if keys.key_id(pub) != kid:
            raise SignatureError(tr(f"{what}：密钥编号与内嵌公钥不符", f"{what}: key id does not match the embedded public key"))
    if not keys.verify(pub, payload, body["signature"]):
        raise SignatureError(tr(f"{what}：签名校验失败（内容被改动，或由其他密钥签名）", f"{what}: signature does not verify (altered, or signed by another key)"))
    return str(kid)


def read_bundle(path: str | Path, trusted_keys: Iterable[Any] = (), *, require_signature: bool = False) -> Bundle:
    """Read and verify a bundle. With trusted keys, the signer must be one of them."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SignatureError(tr(f"{p}：无法读取：{exc.strerror or exc}", f"{p}: cannot read: {exc.strerror or exc}")) from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise SignatureError(tr(f"{p}：签名包过大", f"{p}: bundle too large"))
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(tr(f"{p}：不是签名包（JSON 无效：{exc}）", f"{p}: not a bundle (invalid JSON: {exc})")) from None
    return verify_bundle(body, trusted_key_map(trusted_keys), str(p), require_signature=require_signature)


def verify_bundle(body: Any, trusted: dict[str, Ed25519PublicKey], source: str = "<bundle>", *,
                  require_signature: bool = False, now: datetime | None = None) -> Bundle:
    if not isinstance(body, dict) or body.get("baomi_bundle") != BUNDLE_FORMAT:
        raise SignatureError(tr(f"{source}：不是 baomi 策略签名包（格式 {BUNDLE_FORMAT}）", f"{source}: not a baomi policy bundle (format {BUNDLE_FORMAT})"))
    kid = _check_signed(body, source, trusted, require_signature)
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise SignatureError(tr(f"{source}：签名包中没有文件", f"{source}: bundle has no files"))
    out = []
    for i, f in enumerate(files):
        if not isinstance(f, dict) or not all(isinstance(f.get(k), str) for k in ("name", "text", "sha256")):
            raise SignatureError(tr(f"{source}：第 {i} 个成员格式错误", f"{source}: member {i} is malformed"))
        if sha256_hex(f["text"].encode("utf-8")) != f["sha256"]:
            raise SignatureError(tr(f"{source}：成员 {f['name']} 与其哈希不符（已被改动）", f"{source}: member {f['name']} does not match its hash (altered)"))
        out.append(BundleFile(f["name"], f["text"], f["sha256"]))
    version, expires = body.get("version", 0), body.get("expires", "")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0 or not isinstance(expires, str):
        raise SignatureError(tr(f"{source}：版本或有效期格式错误", f"{source}: malformed version or expiry"))
    if expires and _parse_time(expires) < (now or datetime.now(UTC)):
        raise SignatureError(tr(f"{source}：签名包已于 {expires} 过期，请由签发人重新签发",
                                f"{source}: the bundle expired on {expires}; have its signer issue a new one"))
    return Bundle(tuple(out), kid, str(body.get("created", "")), source, version, expires)


def sig_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sig")


def sign_file(path: str | Path, key: Ed25519PrivateKey) -> Path:
    """Write FILE.sig, a detached signature of the file's exact bytes."""
    p = Path(path)
    body: dict[str, Any] = {"baomi_signature": SIG_FORMAT, "file": p.name,
                            "sha256": sha256_hex(p.read_bytes()), "signed_at": _now(),
                            "key_id": keys.key_id(key), "public_key": keys.public_key_b64(key)}
    body["signature"] = keys.sign(key, keys.canonical_json(body))
    out = sig_path(p)
    out.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out


def verify_file(path: str | Path, data: bytes, trusted: dict[str, Ed25519PublicKey], *,
                require_signature: bool) -> str | None:
    """Check FILE.sig for these bytes; return the signer's key id (None: unsigned, not required)."""
    sp = sig_path(path)
    if not sp.exists():
        if require_signature:
            raise SignatureError(tr(f"{path}：未签名（缺少 {sp.name}），请用受信任密钥签名", f"{path}: unsigned (no {sp.name}); sign it with a trusted key"))
        return None
    try:
        body = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(tr(f"{sp}：签名无法读取：{exc}", f"{sp}: unreadable signature: {exc}")) from None
    if not isinstance(body, dict) or body.get("baomi_signature") != SIG_FORMAT:
        raise SignatureError(tr(f"{sp}：不是 baomi 签名", f"{sp}: not a baomi signature"))
    kid = _check_signed(body, str(sp), trusted, require_signature)
    if body.get("sha256") != sha256_hex(data):
        raise SignatureError(tr(f"{path}：内容与签名不符（已被改动）", f"{path}: content does not match its signature (altered)"))
    return kid
