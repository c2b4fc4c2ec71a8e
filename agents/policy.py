"""The agent's policy: configured packs, replaced by signed bundles fetched from the collector.

A bundle is accepted only when signed by one of the configured officer keys
(`policy.trusted_keys`) and only when newer than the one in use (its signed `created` time):
an older bundle is a rollback and is refused; a bad one leaves the last good policy in place.

A bundle may carry site keyword lists (members named `keywords/*.txt` or `*.keywords.txt`, one
word a line): project code names are themselves sensitive, so the accepted bundle is kept in the
state directory only encrypted (AES-256-GCM, `at_rest.seal`), the lists reach the scanner through
an anonymous in-memory file (memfd), and the YARA rules compiled from them are never cached on
disk. The at-rest key lives beside the state (0600): it protects copies, backups and other
accounts' reads of the policy directory, not a root attacker on the running machine.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agents.config import AgentConfig
from policies.engine import PolicySet, load_policy
from policies.hwm import check_and_record
from policies.signing import SignatureError, trusted_key_map, verify_bundle

_AAD = b"baomi-agent-policy-bundle-v1"


class AtRest:
    """AES-256-GCM sealing of small state files with a per-agent key (`DIR/at-rest.key`, 0600)."""

    def __init__(self, directory: Path):
        self.dir = directory

    def _key(self) -> bytes:
        p = self.dir / "at-rest.key"
        try:
            key = p.read_bytes()
            if len(key) == 32:
                return key
        except FileNotFoundError:
            pass
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        return key

    def seal(self, path: Path, data: bytes) -> None:
        nonce = os.urandom(12)
        blob = nonce + AESGCM(self._key()).encrypt(nonce, data, _AAD)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def open(self, path: Path) -> bytes:
        blob = path.read_bytes()
        try:
            return AESGCM(self._key()).decrypt(blob[:12], blob[12:], _AAD)
        except InvalidTag:
            raise ValueError(f"{path}: does not decrypt (altered, or another key)") from None


def is_keyword_list(name: str) -> bool:
    return name.endswith(".keywords.txt") or (name.startswith("keywords/") and name.endswith(".txt"))


def _words(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        w = line.strip()
        if w and not w.startswith("#"):
            out.append(w)
    return out


class PolicyHolder:
    """The loaded policy, its version and the site keywords that came with it."""

    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        self.dir = cfg.state / "policy"
        self.store = AtRest(self.dir)
        self.policy: PolicySet = self._load_configured()
        self.created = ""
        self.keywords: tuple[str, ...] = ()
        self._try_saved()

    @property
    def version(self) -> str:
        packs = ",".join(f"{n}@{v}" for n, v, _ in self.policy.composed.packs)
        return f"{packs}#{self.created}" if self.created else packs

    def _trusted(self) -> list[str]:
        return [str(k) for k in self.cfg.policy.trusted_keys]

    def _load_configured(self) -> PolicySet:
        keys = self._trusted()
        sources = list(self.cfg.policy.sources)
        shipped_only = all("/" not in s for s in sources)
        # Shipped packs come with the installed code; anything else must be signed when keys are set.
        return load_policy(sources, require_signature=bool(keys) and not shipped_only, trusted_keys=keys)

    def _try_saved(self) -> None:
        p = self.dir / "bundle.enc"
        if p.is_file() and self.cfg.policy.trusted_keys:
            try:
                self._install(json.loads(self.store.open(p)))
            except Exception as exc:  # noqa: BLE001 - a bad saved bundle: keep the configured policy
                import logging

                logging.getLogger("baomi.agent").warning("saved policy bundle refused: %s", exc)

    def _install(self, body: Mapping[str, Any]) -> None:
        """Verify a bundle against the trusted keys and load it; raises on anything wrong."""
        keys = self._trusted()
        if not keys:
            raise SignatureError("no trusted officer key configured")
        bundle = verify_bundle(body, trusted_key_map(keys), "policy bundle", require_signature=True)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_and_record(bundle.key_id, bundle.version, "policy bundle", self.dir / "policy-hwm.json")
        packs = [f for f in bundle.files if not is_keyword_list(f.name)]
        words = tuple(w for f in bundle.files if is_keyword_list(f.name) for w in _words(f.text))
        if not packs:
            raise SignatureError("bundle holds no policy pack")
        # The (already verified) packs are loaded from a private temp dir in bundle order; the
        # keyword lists are never written out.
        with tempfile.TemporaryDirectory(dir=self.dir, prefix="packs-") as d:
            paths = []
            for i, f in enumerate(packs):
                p = Path(d) / f"{i:03d}-{Path(f.name).name}"
                p.write_text(f.text, encoding="utf-8")
                paths.append(str(p))
            policy = load_policy(paths)
        self.policy, self.created, self.keywords = policy, str(body.get("created", "")), words

    def offer(self, body: Any) -> str:
        """Consider a bundle from the collector: `installed`, `same`, `rollback` or `bad: …`."""
        if not self.cfg.policy.trusted_keys:
            return "bad: no trusted officer key configured"
        if not isinstance(body, dict) or not isinstance(body.get("created"), str):
            return "bad: not a policy bundle"
        created = body["created"]
        if self.created and created == self.created:
            return "same"
        if self.created and created < self.created:
            return "rollback"
        old = (self.policy, self.created, self.keywords)
        try:
            self._install(body)
        except Exception as exc:  # noqa: BLE001 - PolicyError, SignatureError: keep the last good one
            self.policy, self.created, self.keywords = old
            return f"bad: {exc}"[:300]
        self.store.seal(self.dir / "bundle.enc", json.dumps(body, ensure_ascii=False).encode("utf-8"))
        return "installed"
