"""Sealing races with the file's writer: nothing the vault did not seal may be deleted.

An editor saves by writing a temporary file and renaming it over the name; a slow writer appends
to a file already judged. Either can happen between the moment the vault reads the file and the
moment it removes "the original". The writer's step is injected deterministically by wrapping
the vault's chunk reader, right after it has read the whole file."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agents.vault as vault_mod
from agents.vault import Vault, VaultError, keygen, load_private


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return keygen(tmp_path / "officer")


def _after_read(monkeypatch: pytest.MonkeyPatch, step: Callable[[], None]) -> None:
    real = vault_mod._chunks

    def chunks(fd: int) -> Iterator[tuple[int, bytes, bool]]:
        yield from real(fd)
        step()  # the writer acts after the vault has read everything

    monkeypatch.setattr(vault_mod, "_chunks", chunks)


def test_a_file_renamed_over_the_name_while_sealing_is_kept(tmp_path: Path, keys: tuple[Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    key, pub = keys
    out = tmp_path / "Outbox"
    out.mkdir()
    src = out / "report.docx"
    src.write_bytes(b"first version")
    newer = out / ".report.docx.tmp"
    newer.write_bytes(b"second version, saved by the editor")
    _after_read(monkeypatch, lambda: os.replace(newer, src))
    v = Vault(tmp_path / "vault", pub)
    with pytest.raises(VaultError, match="replaced"):
        v.seal(src, reason={"rule": "CN-SEC-005"})
    # The newer file was never sealed: it must still be there.
    assert src.read_bytes() == b"second version, saved by the editor"
    # What was read is sealed and restorable (the first version was not lost either).
    (item,) = v.items()
    assert b"".join(v.open(item.id, load_private(key))) == b"first version"


def test_a_file_appended_to_while_sealing_is_kept(tmp_path: Path, keys: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _key, pub = keys
    src = tmp_path / "report.txt"
    src.write_bytes(b"A" * 1000)

    def append() -> None:
        with open(src, "ab") as fh:
            fh.write(b"B" * 10)

    _after_read(monkeypatch, append)
    v = Vault(tmp_path / "vault", pub)
    with pytest.raises(VaultError, match="changed"):
        v.seal(src, reason={"rule": "CN-SEC-001"})
    assert src.read_bytes() == b"A" * 1000 + b"B" * 10
    assert v.items() == [], "an incomplete sealed copy is not left behind as if it were the file"


def test_restore_never_overwrites_a_file_that_appears_meanwhile(tmp_path: Path, keys: tuple[Path, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    key, pub = keys
    src = tmp_path / "a.txt"
    src.write_bytes(b"sealed bytes")
    v = Vault(tmp_path / "vault", pub)
    item = v.seal(src, reason={})
    real_lexists = os.path.lexists

    def lexists(p: object) -> bool:
        found = real_lexists(p)  # type: ignore[arg-type]
        if not found and str(p) == str(src):
            src.write_bytes(b"the user's new file")  # appears right after the existence check
        return found

    monkeypatch.setattr(vault_mod.os.path, "lexists", lexists)
    with pytest.raises(VaultError, match="exists"):
        v.restore(item.id, load_private(key))
    assert src.read_bytes() == b"the user's new file"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".a.txt")] == []


def test_file_size_limit_keeps_the_original_without_root(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """A vault write refused by RLIMIT_FSIZE (EFBIG: the same failure path as a full disk, and
    available without root) raises VaultError, keeps the original and leaves no partial item."""
    import subprocess
    import sys

    _key, pub = keys
    src = tmp_path / "big.bin"
    data = os.urandom(512 * 1024)
    src.write_bytes(data)
    child = f"""
import resource, signal, sys
from agents.vault import Vault, VaultError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    Vault({str(tmp_path / 'vault')!r}, {str(pub)!r}).seal({str(src)!r}, reason={{"rule": "CN-SEC-001"}})
except VaultError as exc:
    print("VaultError:", exc); sys.exit(0)
sys.exit(1)
"""
    p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("VaultError:"), p.stdout + p.stderr
    assert src.read_bytes() == data
    assert [x.name for x in (tmp_path / "vault").iterdir()] == []
