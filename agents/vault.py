"""The quarantine vault: files sealed to the security officer's public key.

A quarantined file is encrypted on the workstation to the officer's X25519 public key (an
ephemeral X25519 key agreement, HKDF-SHA256, ChaCha20-Poly1305 in 1 MiB chunks), so that the
workstation itself — and whoever controls it — cannot read it back: only the officer's private
key, which never lives on the workstation, opens it. The original is removed only after the
sealed copy and its metadata are fsynced and renamed into place (and the directory fsynced).

Layout of `<vault>/<id>.sealed`:

    MAGIC (8 bytes) | header length (4, big endian) | header JSON | chunk*

The header (JSON) holds the ephemeral public key, a random nonce prefix and the chunk size; it is
bound to every chunk as associated data, as is the chunk's index and a last-chunk flag, so chunks
cannot be reordered, dropped or truncated unnoticed. `<vault>/<id>.json` holds what an officer
lists without the key: original path, size, mode, owner, SHA-256 of the plaintext, when and why
(rule, policy version) — never content.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"BAOMIQ1\n"
CHUNK = 1 << 20
_INFO = b"baomi quarantine vault v1"


class VaultError(RuntimeError):
    """Sealing, listing or restoring failed (disk full, bad key, damaged item): said, not hidden."""


@dataclass(frozen=True)
class SealedItem:
    """What the vault knows of a quarantined file without the officer's key."""

    id: str
    sha256: str
    original_path: str
    size: int
    mode: int
    sealed_at: str
    uid: int = -1
    gid: int = -1
    reason: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SealedItem:
        """A record read back from ITEM.json; ValueError/TypeError when it is not one."""
        item = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        types = {"id": str, "sha256": str, "original_path": str, "size": int, "mode": int, "sealed_at": str}
        for k, t in types.items():
            v = getattr(item, k)
            if not isinstance(v, t) or isinstance(v, bool):
                raise ValueError(f"{k} is not a {t.__name__}")
        datetime.fromisoformat(item.sealed_at)  # ValueError when it is not a time
        return item


# -- keys --------------------------------------------------------------------------------------
def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create `path` anew (never through a planted symlink, never over an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def keygen(prefix: str | Path) -> tuple[Path, Path]:
    """PREFIX.key (the officer's private key, 0600) and PREFIX.pub (for the agents' config)."""
    key_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    k = X25519PrivateKey.generate()
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        _write_exclusive(key_path, priv, 0o600)
    except FileExistsError:
        raise VaultError(f"{key_path} exists: refusing to overwrite a key") from None
    try:
        _write_exclusive(pub_path, pub, 0o644)
    except FileExistsError:
        key_path.unlink()
        raise VaultError(f"{pub_path} exists: refusing to overwrite a key") from None
    return key_path, pub_path


def load_public(path: str | Path) -> X25519PublicKey:
    try:
        pub = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise VaultError(f"cannot read the officer's public key {path}: {exc}") from exc
    if not isinstance(pub, X25519PublicKey):
        raise VaultError(f"{path} is not an X25519 public key (make one with baomi quarantine keygen)")
    return pub


def load_private(path: str | Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise VaultError(f"cannot read the officer's private key {path}: {exc}") from exc
    if not isinstance(key, X25519PrivateKey):
        raise VaultError(f"{path} is not an X25519 private key")
    return key


def _aead(shared: bytes, salt: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(HKDF(SHA256(), 32, salt, _INFO).derive(shared))


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the vault ---------------------------------------------------------------------------------
class Vault:
    """A directory of sealed files. The workstation side needs only the officer's public key."""

    def __init__(self, path: str | Path, officer_pub: str | Path | None = None):
        self.path = Path(path)
        self.pub = load_public(officer_pub) if officer_pub is not None else None

    def seal(self, src: str | Path, *, reason: dict[str, Any] | None = None) -> SealedItem:
        """Encrypt `src` into the vault, fsync, then remove the original. Raises VaultError."""
        if self.pub is None:
            raise VaultError("no officer public key: this vault is open for listing only")
        src = Path(src)
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise VaultError(f"cannot open {src}: {exc.strerror}") from exc
        item_id = "q-" + uuid.uuid4().hex[:20]
        tmp = self.path / f".{item_id}.sealed.tmp"
        try:
            st = os.fstat(fd)
            if not (st.st_mode & 0o170000) == 0o100000:
                raise VaultError(f"{src} is not a regular file")
            eph = X25519PrivateKey.generate()
            salt = os.urandom(16)
            prefix = os.urandom(8)
            eph_pub = eph.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            header = json.dumps({"v": 1, "alg": "X25519-HKDF-SHA256-ChaCha20Poly1305", "chunk": CHUNK,
                                 "eph": base64.b64encode(eph_pub).decode(), "salt": base64.b64encode(salt).decode(),
                                 "nonce": base64.b64encode(prefix).decode()}, sort_keys=True).encode()
            aead = _aead(eph.exchange(self.pub), salt)
            digest = hashlib.sha256()
            size = 0
            with open(tmp, "xb") as out:
                os.chmod(tmp, 0o600)
                out.write(MAGIC + struct.pack(">I", len(header)) + header)
                for index, chunk, last in _chunks(fd):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(aead.encrypt(_nonce(prefix, index), chunk, _aad(header, index, last)))
                out.flush()
                os.fsync(out.fileno())
            after = os.fstat(fd)
            if size != st.st_size or (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                # Still being written: what was read is not the file; removing it would lose the rest.
                tmp.unlink()
                raise VaultError(f"{src} changed while it was being sealed: the original is kept (not sealed)")
            item = SealedItem(item_id, digest.hexdigest(), os.path.abspath(src), size, st.st_mode & 0o7777,
                              datetime.now(UTC).isoformat(timespec="seconds"), st.st_uid, st.st_gid,
                              dict(reason or {}))
            meta_tmp = self.path / f".{item_id}.json.tmp"
            with open(meta_tmp, "x", encoding="utf-8") as fh:
                json.dump(asdict(item), fh, ensure_ascii=False, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / f"{item_id}.sealed")
            os.replace(meta_tmp, self.path / f"{item_id}.json")
            _fsync_dir(self.path)
        except OSError as exc:
            for p in (tmp, self.path / f".{item_id}.json.tmp"):
                try:
                    p.unlink()
                except OSError:
                    pass
            raise VaultError(f"cannot seal {src} into {self.path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        # Only now, with the sealed copy durable, does the original go — and only if the name
        # still holds the very file that was read (an editor's save renames a new file over it).
        try:
            now = os.lstat(src)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise VaultError(f"{src} was sealed as {item_id}, but the name was meanwhile replaced by "
                                 "another file, which is kept (not sealed)")
            os.unlink(src)
            _fsync_dir(src.parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise VaultError(f"{src} was sealed as {item_id} but could not be removed: {exc.strerror}") from exc
        return item

    # -- officer side ------------------------------------------------------------------------
    def items(self, problems: list[str] | None = None) -> list[SealedItem]:
        """Every item's record. A damaged record raises VaultError — or, when a `problems` list
        is given, is described there and skipped, so that one bad entry hides no other."""
        out: list[SealedItem] = []
        if not self.path.is_dir():
            return out
        for p in sorted(self.path.glob("q-*.json")):
            try:
                out.append(SealedItem.from_dict(json.loads(p.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError) as exc:
                if problems is None:
                    raise VaultError(f"damaged vault entry {p.name}: {exc}") from exc
                problems.append(f"damaged vault entry {p.name}: {exc}")
        return sorted(out, key=lambda i: i.sealed_at)

    def get(self, item_id: str) -> SealedItem:
        if "/" in item_id or not item_id.startswith("q-"):
            raise VaultError(f"not a vault item id: {item_id}")
        p = self.path / f"{item_id}.json"
        try:
            return SealedItem.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise VaultError(f"no item {item_id} in {self.path}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise VaultError(f"damaged vault entry {item_id}: {exc}") from exc

    def open(self, item_id: str, officer_key: X25519PrivateKey) -> Iterator[bytes]:
        """The plaintext of an item, chunk by chunk, authenticated (VaultError on a wrong key or
        a damaged, truncated or reordered file)."""
        self.get(item_id)
        path = self.path / f"{item_id}.sealed"
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise VaultError(f"cannot read {path}: {exc.strerror}") from exc
        with fh:
            if fh.read(len(MAGIC)) != MAGIC:
                raise VaultError(f"{path} is not a sealed vault item")
            (hlen,) = struct.unpack(">I", fh.read(4))
            if hlen > 4096:
                raise VaultError(f"{path}: damaged header")
            header = fh.read(hlen)
            try:
                h = json.loads(header)
                eph = X25519PublicKey.from_public_bytes(base64.b64decode(h["eph"]))
                salt, prefix, chunk = base64.b64decode(h["salt"]), base64.b64decode(h["nonce"]), int(h["chunk"])
            except (ValueError, KeyError, TypeError) as exc:
                raise VaultError(f"{path}: damaged header ({exc})") from exc
            aead = _aead(officer_key.exchange(eph), salt)
            index = 0
            block = fh.read(chunk + 16)
            while True:
                nxt = fh.read(chunk + 16) if len(block) == chunk + 16 else b""
                last = not nxt
                try:
                    yield aead.decrypt(_nonce(prefix, index), block, _aad(header, index, last))
                except InvalidTag:
                    raise VaultError(f"{item_id}: wrong officer key, or the sealed file is damaged") from None
                if last:
                    return
                block, index = nxt, index + 1

    def restore(self, item_id: str, officer_key: X25519PrivateKey, dest: str | Path | None = None) -> Path:
        """Write the exact bytes back (to `dest` or the original path) with the original mode."""
        item = self.get(item_id)
        target = Path(dest) if dest else Path(item.original_path)
        if target.is_dir():
            target = target / Path(item.original_path).name
        tmp = target.with_name(f".{target.name}.restore-{uuid.uuid4().hex[:8]}")
        digest = hashlib.sha256()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise VaultError(f"cannot write {tmp}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                for part in self.open(item_id, officer_key):
                    digest.update(part)
                    out.write(part)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != item.sha256:
                raise VaultError(f"{item_id}: restored bytes do not match the recorded SHA-256")
            os.chmod(tmp, item.mode)
            if os.path.lexists(target):
                raise VaultError(f"{target} exists: choose another --to")
            try:
                os.link(tmp, target)  # unlike a rename, never replaces a file that appeared meanwhile
            except FileExistsError:
                raise VaultError(f"{target} exists: choose another --to") from None
            tmp.unlink()
            _fsync_dir(target.parent)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise VaultError(f"cannot restore {item_id} to {target}: {exc.strerror or exc}") from exc
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        return target

    def purge(self, item_id: str) -> None:
        self.get(item_id)
        for suffix in (".sealed", ".json"):
            try:
                (self.path / f"{item_id}{suffix}").unlink()
            except FileNotFoundError:
                pass
        _fsync_dir(self.path)


def _chunks(fd: int) -> Iterator[tuple[int, bytes, bool]]:
    """(index, bytes, last) of a file in CHUNK pieces; an empty file is one empty last chunk."""
    index = 0
    cur = os.read(fd, CHUNK)
    while True:
        nxt = os.read(fd, CHUNK) if len(cur) == CHUNK else b""
        while nxt and len(nxt) < CHUNK:  # short reads: fill the chunk so boundaries stay fixed
            more = os.read(fd, CHUNK - len(nxt))
            if not more:
                break
            nxt += more
        yield index, cur, not nxt
        if not nxt:
            return
        cur, index = nxt, index + 1
