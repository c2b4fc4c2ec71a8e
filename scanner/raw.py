"""`baomi scan --raw DEVICE|IMAGE`: markings in deleted files and unallocated space of a medium.

A file deleted from a USB stick is gone from its directory, not from its sectors. Two passes over
the device or image, both read-only (nothing is ever written to the medium):

1. Deleted files, by name, through The Sleuth Kit (pytsk3): every directory entry of a FAT,
   exFAT, NTFS, ext or other TSK-supported file system whose name or metadata is unallocated is
   read back as far as its clusters still hold it and scanned like any file (a deleted .docx is
   unzipped, its marking found); reported as member `deleted:/PATH` with the byte offset of its
   first cluster.
2. Unallocated space: the bytes outside every allocated file are swept in chunks (with an
   overlap, so a marking across a chunk boundary is not lost) for text runs in every encoding the
   text engine reads; each marking is reported with its absolute byte offset.

Without a recognised file system (a wiped partition table, an unknown format) the whole device is
swept as unallocated space and the record says so. Library choice: pytsk3 (Apache-2.0 bindings of
The Sleuth Kit, manylinux wheels with TSK inside): FAT12/16/32, exFAT and NTFS deleted entries with
names in one API; dissect.fat reads FAT only and is not packaged here.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scanner.classify import classify
from scanner.extractors.runs import RUN_ROLE, text_runs
from scanner.model import SCHEMA_VERSION, Finding, Kind, Level, Segment, max_level

#: Bytes swept at a time, and carried over between chunks (a marking line is far shorter).
CHUNK = 8 * 1024 * 1024
OVERLAP = 4096
#: Deleted files larger than this are read only up to it (their head holds the marking).
MAX_DELETED = 64 * 1024 * 1024


@dataclass(frozen=True)
class Extent:
    start: int
    end: int


def scan_raw(path: str, scanner: Any) -> dict[str, Any]:
    """One scan record for a device or image (markings.md §5, with `offset` on each finding)."""
    findings: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return _record(path, [], [{"member": None, "error": "unreadable", "detail": exc.strerror or str(exc)}], 0)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        allocated: list[Extent] = []
        fs = _open_fs(path)
        if fs is None:
            errors.append({"member": None, "error": "unsupported",
                           "detail": "no file system recognised: the whole device was swept as unallocated space"})
        else:
            try:
                allocated = _walk(fs, scanner, findings, errors)
            except Exception as exc:  # a damaged directory tree: what was read stands, the sweep goes on
                errors.append({"member": None, "error": "corrupt", "detail": f"file system walk: {exc}"[:300]})
        for f in _sweep(fd, size, _gaps(allocated, size), scanner):
            findings.append(f)
    finally:
        os.close(fd)
    return _record(path, findings, errors, size)


def _record(path: str, findings: list[dict[str, Any]], errors: list[dict[str, Any]], size: int) -> dict[str, Any]:
    marks = [Level(f["level"]) for f in findings if f["kind"] == "marking" and f.get("level")]
    lv = max_level(marks)
    return {"schema": SCHEMA_VERSION, "path": path, "level": lv.value if lv else None, "findings": findings,
            "errors": errors, "size": size, "mime": "inode/blockdevice" if _is_block(path) else "application/x-raw-disk-image",
            "raw": True}


def _is_block(path: str) -> bool:
    import stat

    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


# -- pass 1: the file system ---------------------------------------------------------------------
def _open_fs(path: str) -> Any:
    try:
        import pytsk3
    except ImportError:
        return None
    try:
        return pytsk3.FS_Info(pytsk3.Img_Info(path))
    except (OSError, RuntimeError):
        return None


def _walk(fs: Any, scanner: Any, findings: list[dict[str, Any]], errors: list[dict[str, Any]]) -> list[Extent]:
    """Scan deleted files; return the extents of allocated files (not to be swept again)."""
    import pytsk3

    block = int(fs.info.block_size)
    allocated: list[Extent] = []
    seen_dirs: set[int] = set()
    stack: list[tuple[Any, str]] = [(fs.open_dir("/"), "")]
    while stack:
        directory, prefix = stack.pop()
        for entry in directory:
            name = entry.info.name.name.decode("utf-8", "replace")
            if name in (".", "..") or name.startswith("$"):
                continue
            meta = entry.info.meta
            if meta is None:
                continue
            path = f"{prefix}/{name}"
            deleted = bool(entry.info.name.flags & pytsk3.TSK_FS_NAME_FLAG_UNALLOC) or \
                bool(meta.flags & pytsk3.TSK_FS_META_FLAG_UNALLOC)
            if meta.type == pytsk3.TSK_FS_META_TYPE_DIR:
                if not deleted and meta.addr not in seen_dirs:
                    seen_dirs.add(meta.addr)
                    try:
                        stack.append((entry.as_directory(), path))
                    except (OSError, RuntimeError) as exc:
                        errors.append({"member": path, "error": "corrupt", "detail": str(exc)[:200]})
                continue
            if meta.type != pytsk3.TSK_FS_META_TYPE_REG:
                continue
            runs = list(_runs(entry, block))
            if not deleted:
                allocated.extend(runs)
            elif _scan_deleted(entry, path, int(meta.size), runs, scanner, findings, errors):
                allocated.extend(runs)  # read back as a file: its clusters are not reported twice
    return allocated


def _runs(entry: Any, block: int) -> Iterator[Extent]:
    for attr in entry:
        try:
            for run in attr:
                if run.len > 0 and run.addr > 0:
                    yield Extent(run.addr * block, (run.addr + run.len) * block)
        except (OSError, RuntimeError):
            continue


def _scan_deleted(entry: Any, path: str, size: int, runs: list[Extent], scanner: Any,
                  findings: list[dict[str, Any]], errors: list[dict[str, Any]]) -> bool:
    """Scan a deleted file's recoverable bytes; True when they were read."""
    member = f"deleted:{path}"
    want = min(size, MAX_DELETED)
    try:
        data = entry.read_random(0, want) if want else b""
    except (OSError, RuntimeError) as exc:
        errors.append({"member": member, "error": "unreadable", "detail": f"deleted file not recoverable: {exc}"[:200]})
        return False
    if not data:
        return False
    found, errs, _mime = scanner.scan_bytes(data, path.rsplit("/", 1)[-1])
    offset = runs[0].start if runs else None
    for f in found:
        rec = f.to_record()
        rec["member"] = member + (f"!{f.member}" if f.member else "")
        rec["offset"] = offset
        rec["sha256"] = hashlib.sha256(data).hexdigest()
        findings.append(rec)
    for e in errs:
        rec = e.to_record()
        rec["member"] = member + (f"!{e.member}" if e.member else "")
        errors.append(rec)
    return True


# -- pass 2: unallocated space ----------------------------------------------------------------------
def _gaps(allocated: list[Extent], size: int) -> list[Extent]:
    out, pos = [], 0
    for ext in sorted(allocated, key=lambda e: e.start):
        if ext.start > pos:
            out.append(Extent(pos, min(ext.start, size)))
        pos = max(pos, ext.end)
    if pos < size:
        out.append(Extent(pos, size))
    return [g for g in out if g.end > g.start]


def _sweep(fd: int, size: int, gaps: list[Extent], scanner: Any) -> Iterator[dict[str, Any]]:
    seen: set[tuple[int, str]] = set()
    for gap in gaps:
        pos = gap.start
        while pos < gap.end:
            end = min(gap.end, pos + CHUNK)
            chunk = os.pread(fd, end - pos + (OVERLAP if end < gap.end else 0), pos)
            if not chunk:
                break
            if chunk.count(0) != len(chunk) and scanner.rules.prefilter(chunk):
                for off, f in _markings(chunk, scanner.rules.prefilter_offsets(chunk)):
                    key = (pos + off, f.text)
                    if key not in seen:
                        seen.add(key)
                        rec = f.to_record()
                        rec["member"] = f"unallocated@{pos + off}"
                        rec["offset"] = pos + off
                        yield rec
            pos = end


def _markings(chunk: bytes, anchors: list[int] | None = None) -> Iterator[tuple[int, Finding]]:
    """Markings in the text runs of a chunk, each with the run's offset in the chunk."""
    for run in text_runs(chunk, anchors):
        for f in classify([Segment(text=run.text, member=None, role=RUN_ROLE, index=0)]):
            if f.kind is Kind.MARKING:
                yield run.byte_offset(f.text), f
