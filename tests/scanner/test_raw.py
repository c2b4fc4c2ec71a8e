"""`baomi scan --raw`: deleted files and unallocated space on FAT32 and exFAT images built here.

FAT32 images are written without mounting (mkfs.vfat + mtools); exFAT needs a mount (exfat-fuse on
a loop device, as root): skipped with the reason where the machine cannot. The images are never
written by the scan: their hash is the same before and after.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAOMI = str(Path(sys.executable).parent / "baomi")
GBK_TEXT = "秘密★5年\n关于某事的报告\n正文内容。\n".encode("gbk")


def need(*tools: str) -> None:
    for t in tools:
        if not shutil.which(t):
            pytest.skip(f"{t} is not installed (Debian packages dosfstools, mtools, exfatprogs, exfat-fuse)")


def marked_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_paragraph("绝密★长期")
    d.add_paragraph("关于某项目的通知")
    d.add_paragraph("正文。")
    d.save(str(path))
    return path


def scan_raw(img: Path) -> tuple[int, dict]:
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    p = subprocess.run([BAOMI, "scan", "--raw", "--all", "--format", "jsonl", str(img)], capture_output=True, text=True,
                       timeout=300)
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before, "the medium is never written"
    (rec,) = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return p.returncode, rec


def fat32(tmp_path: Path) -> Path:
    need("mkfs.vfat", "mcopy", "mdel")
    img = tmp_path / "fat32.img"
    with open(img, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.vfat", "-F", "32", str(img)], check=True, capture_output=True)
    (tmp_path / "通知.docx").write_bytes(marked_docx(tmp_path / "m.docx").read_bytes())
    (tmp_path / "report.txt").write_bytes(GBK_TEXT)
    (tmp_path / "keep.txt").write_text("普通文件。\n", encoding="utf-8")
    for f in ("通知.docx", "report.txt", "keep.txt"):
        subprocess.run(["mcopy", "-i", str(img), str(tmp_path / f), f"::/{f}"], check=True, capture_output=True,
                       env={**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C.UTF-8"})
    return img


def test_fat32_untouched_has_no_finding(tmp_path: Path) -> None:
    img = fat32(tmp_path)
    code, rec = scan_raw(img)
    assert code == 0 and rec["findings"] == [] and rec["errors"] == []


def test_fat32_deleted_docx_and_gbk_text_found_with_offsets(tmp_path: Path) -> None:
    img = fat32(tmp_path)
    subprocess.run(["mdel", "-i", str(img), "::/通知.docx", "::/report.txt"], check=True, capture_output=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C.UTF-8"})
    code, rec = scan_raw(img)
    assert code == 1 and rec["level"] == "top_secret"
    by_text = {f["text"]: f for f in rec["findings"] if f["kind"] == "marking"}
    assert set(by_text) == {"绝密★长期", "秘密★5年"}
    docx_hit = by_text["绝密★长期"]
    assert docx_hit["member"].startswith("deleted:/") and docx_hit["member"].endswith("!word/document.xml")
    assert "docx" in docx_hit["member"], "the deleted file's name, where the file system keeps it"
    raw = img.read_bytes()
    for f in by_text.values():
        assert isinstance(f["offset"], int) and 0 < f["offset"] < len(raw)
    gbk = by_text["秘密★5年"]
    assert raw[gbk["offset"]: gbk["offset"] + len(GBK_TEXT)] == GBK_TEXT, "the offset points at the bytes"


def test_unallocated_space_sweep_and_corrupt_image(tmp_path: Path) -> None:
    # no file system at all: the whole image is swept, in every encoding, and the record says so
    img = tmp_path / "wiped.img"
    # seeded noise: random bytes can, rarely, decode to a marking of their own in some encoding
    blob = bytearray(random.Random(88).randbytes(3 * 1024 * 1024))
    marks = {"机密★10年\n关于某事的通知\n".encode(): 100_000,
             "绝密★长期\n关于某事的通知\n".encode("utf-16-le"): 2_000_000,
             "秘密★5年\n关于某事的报告\n".encode("big5", errors="ignore"): 8 * 1024 * 1024 - 10}
    blob += bytes(8 * 1024 * 1024)  # the last mark straddles the 8 MiB sweep chunk boundary
    for data, off in marks.items():
        blob[off - 1: off] = b"\x00"
        blob[off: off + len(data)] = data
        blob[off + len(data): off + len(data) + 1] = b"\x00"
    img.write_bytes(bytes(blob))
    code, rec = scan_raw(img)
    assert rec["errors"][0]["error"] == "unsupported"
    offsets = sorted(f["offset"] for f in rec["findings"] if f["kind"] == "marking")
    assert offsets == sorted(marks.values())
    assert code == 1
    p = subprocess.run([BAOMI, "scan", "--raw", str(tmp_path / "missing.img")], capture_output=True, text=True)
    assert p.returncode == 2


def test_exfat_deleted_files(tmp_path: Path) -> None:
    need("mkfs.exfat", "mount.exfat-fuse", "losetup")
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.skip("writing an exFAT image needs root, a loop device and /dev/fuse (exfat-fuse)")
    img = tmp_path / "exfat.img"
    with open(img, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.exfat", str(img)], check=True, capture_output=True)
    p = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"no loop device: {p.stderr.strip()}")
    dev = p.stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        if subprocess.run(["mount.exfat-fuse", dev, str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot mount exFAT through FUSE here")
        try:
            marked_docx(mnt / "通知.docx")
            (mnt / "report.txt").write_bytes(GBK_TEXT)
            os.sync()
            (mnt / "通知.docx").unlink()
            (mnt / "report.txt").unlink()
            os.sync()
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
    code, rec = scan_raw(img)
    assert code == 1
    by_text = {f["text"]: f for f in rec["findings"] if f["kind"] == "marking"}
    assert set(by_text) == {"绝密★长期", "秘密★5年"}
    assert by_text["绝密★长期"]["member"].startswith("deleted:/通知.docx"), "exFAT keeps the whole name"
    assert all(isinstance(f["offset"], int) for f in by_text.values())
