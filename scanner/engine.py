"""The scan core: one file in, one `FileResult` out. Pure: no printing, no policy, no network.

    Scanner(ScanConfig(...)).scan_path(path) -> FileResult

Per item (the file, or a member of a container): identify by content → pick an extractor →
collect segments, recurse into members (depth and decompression budget enforced), collect
errors → classify segments → add site-rule and keyword matches. Large plain-text files are
streamed in chunks cut at line ends, so memory stays bounded and no marking is split.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import stat
from collections.abc import Iterator

from rules import vocabulary
from rules.loader import NS_KEYWORD, RuleSet
from scanner import alloc
from scanner.classify import TOP_LINES, classify
from scanner.config import ScanConfig, config_digest
from scanner.decode import decode
from scanner.extractors.base import Budget, Context
from scanner.extractors.registry import pick
from scanner.extractors.runs import RUN_ROLE, run_segments
from scanner.identify import identify, is_plain_text
from scanner.model import ErrorCode, FileResult, Finding, Kind, Member, ScanError, Segment, clean_result

__all__ = ["STREAM_CHUNK", "ScanConfig", "Scanner"]

#: Plain-text files above this size are streamed in chunks of this size.
STREAM_CHUNK = 16 * 1024 * 1024
#: A file is opened read-only, not following a symlink in its last component, and without
#: blocking on a FIFO that replaced it since the walk.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class Scanner:
    def __init__(self, config: ScanConfig | None = None) -> None:
        alloc.tune()  # a buffer per file: freed heap is kept for the next one (see scanner.alloc)
        self.config = config or ScanConfig()
        self.rules = RuleSet(self.config.rules_dir, self.config.keywords_file, self.config.rules_cache)
        from scanner.ocr import OcrBudget, OcrMode, OcrSettings

        self.ocr = OcrSettings(OcrMode.parse(self.config.ocr_mode), OcrBudget(self.config.ocr_budget))

    def warm_up(self) -> None:
        """Ready this scanner for a long life of one verdict at a time (the agent's path).

        Every extractor, and what each imports on first use, is loaded by scanning the built-in
        sample set (text in five encodings, a .docx, a zip, a mail, HTML), so the first real file
        costs what the rest do. Then a full collection and `gc.freeze()`: the modules, rules and
        compiled patterns the process keeps for its whole life leave the collector's full passes.
        Those passes came every ~140 verdicts of a 100 KB .docx and cost 12-18 ms each: they
        were the p99 of the verdicts (issue 17, goal 3)."""
        import gc
        import tempfile

        from scanner.extractors.registry import extractors
        from scanner.samples import build_samples

        extractors()
        with tempfile.TemporaryDirectory(prefix="baomi-warm-") as d:
            build_samples(d)
            for root, _dirs, files in os.walk(d):
                for f in files:
                    self.scan_path(os.path.join(root, f))
        gc.collect()
        gc.freeze()

    @property
    def config_digest(self) -> str:
        """Everything a file's verdict depends on besides the file (see `scanner.config`)."""
        return config_digest(self.config, self.rules)

    # -- top level -------------------------------------------------------------------------
    def scan_path(self, path: str | bytes, display: str | None = None) -> FileResult:
        """Scan one regular file. Never raises for bad input: problems become error records."""
        shown = display if display is not None else os.fsdecode(path)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            code = ErrorCode.SKIPPED if exc.errno == errno.ELOOP else ErrorCode.UNREADABLE
            return FileResult(shown, errors=(ScanError(code, exc.strerror or str(exc)),))
        try:
            return self.scan_fd(fd, shown)
        finally:
            os.close(fd)

    def scan_fd(self, fd: int, display: str) -> FileResult:
        """Scan the regular file open on `fd` (not closed here; read from its current offset 0).

        For a process that may not open the file itself: the agent's privileged part opens it
        (O_NOFOLLOW) and hands the descriptor to an unprivileged worker (`agents.privsep`)."""
        shown = display
        limits = self.config.limits
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return FileResult(shown, errors=(ScanError(ErrorCode.SKIPPED, "not a regular file"),))
            if st.st_size > limits.max_file_size:
                return FileResult(shown, size=st.st_size, errors=(ScanError(
                    ErrorCode.TOO_LARGE, f"{st.st_size} bytes > --max-file-size {limits.max_file_size}"),))
            if st.st_size > STREAM_CHUNK:
                with os.fdopen(fd, "rb", closefd=False) as fh:
                    large = self._scan_large(fh, shown, st.st_size)
                if large is not None:
                    return large
                os.lseek(fd, 0, os.SEEK_SET)
            data = _read_all(fd, st.st_size)
        except OSError as exc:
            return FileResult(shown, errors=(ScanError(ErrorCode.UNREADABLE, exc.strerror or str(exc)),))
        plain = is_plain_text(data)
        if plain and not self.rules.prefilter(data):
            # `scan_bytes`'s short cut, taken here: no lists, sets or name for the 87 % of a prose
            # tree's files that end here, and their result built in one step (issue 17: the glue
            # around reading and prefiltering such a file was ~14 µs of its ~45).
            sha = hashlib.sha256(data).hexdigest() if self.config.hash_files == "all" else None
            return clean_result(shown, len(data), "text/plain", sha)
        sources: set[str] = set()  # per call, not on the scanner: the agent shares one across threads
        findings, errors, mime = self._scan_rest(data, os.path.basename(shown), sources, plain)
        hash_it = self.config.hash_files == "all" or (self.config.hash_files == "flagged" and (findings or errors))
        sha = hashlib.sha256(data).hexdigest() if hash_it else None
        extra = {"text_source": "runs"} if "runs" in sources and findings else {}
        return FileResult(shown, tuple(findings), tuple(errors), size=len(data), mime=mime, sha256=sha, extra=extra)

    def scan_bytes(self, data: bytes, name: str = "", sources: set[str] | None = None
                   ) -> tuple[list[Finding], list[ScanError], str]:
        """Findings and errors of an in-memory item (and everything nested in it). `sources`, when
        given, receives `runs` if some text was read as runs out of binary bytes."""
        plain = is_plain_text(data)
        if plain and not self.rules.prefilter(data):
            # The common case of a tree walk, short-cut: plain text with no marking-shaped
            # bytes in any encoding (what identify → text extractor → prefilter would conclude).
            return [], [], "text/plain"
        return self._scan_rest(data, name, sources, plain)

    def _scan_rest(self, data: bytes, name: str, sources: set[str] | None, plain: bool
                   ) -> tuple[list[Finding], list[ScanError], str]:
        """`scan_bytes` past its short cut: `plain` (`is_plain_text(data)`) tells text that
        passed the prefilter."""
        findings: list[Finding] = []
        errors: list[ScanError] = []
        budget = Budget(self.config.limits)
        # Plain text that passed the prefilter above is not run through it a second time, nor typed again.
        mime = self._scan_item(data, None, 0, budget, name, findings, errors, prefiltered=plain, sources=sources,
                               mime="text/plain" if plain else None)
        return _dedupe(findings), errors, mime

    def text_of(self, data: bytes, name: str = "") -> str:
        """The located text of an item and its members, joined (no classification, no OCR): what
        a fingerprint of the document's content is taken of. Never raises."""
        from scanner.ocr import OcrBudget, OcrMode, OcrSettings

        parts: list[str] = []
        budget = Budget(self.config.limits)
        no_ocr = OcrSettings(OcrMode.parse("off"), OcrBudget(None))

        def walk(item: bytes, member: str | None, depth: int) -> None:
            mime = identify(item)
            ex = pick(item, mime)
            if ex is None:
                return
            ctx = Context(member=member, depth=depth, mime=mime, limits=self.config.limits, budget=budget,
                          name=name, prefilter=None, ocr=no_ocr)
            try:
                for it in ex.extract(item, ctx):
                    if isinstance(it, Segment):
                        parts.append(it.text)
                    elif isinstance(it, Member) and depth + 1 <= self.config.limits.max_depth:
                        walk(it.data, it.name, depth + 1)
            except Exception:  # noqa: BLE001 - a damaged item gives what it gave
                return

        walk(data, None, 0)
        return "\n".join(parts)

    # -- recursion ---------------------------------------------------------------------------
    def _scan_item(self, data: bytes, member: str | None, depth: int, budget: Budget, name: str,
                   findings: list[Finding], errors: list[ScanError], prefiltered: bool = False,
                   sources: set[str] | None = None, mime: str | None = None) -> str:
        """`mime`, when given, is what `identify(data)` gives (the caller typed it already)."""
        if mime is None:
            mime = identify(data)
        ex = pick(data, mime)
        segments: list[Segment] = []
        if ex is not None:
            ctx = Context(member=member, depth=depth, mime=mime, limits=self.config.limits, budget=budget,
                          name=name, prefilter=None if prefiltered else self.rules.prefilter, ocr=self.ocr,
                          anchors=self.rules.prefilter_offsets)
            try:
                for item in ex.extract(data, ctx):
                    if isinstance(item, Segment):
                        segments.append(item)
                    elif isinstance(item, Member):
                        self._member(item, member, depth, budget, findings, errors, sources)
                    elif isinstance(item, ScanError):
                        errors.append(item)
                    elif isinstance(item, Finding):
                        findings.append(item)
            except MemoryError:
                errors.append(ScanError(ErrorCode.TOO_LARGE, f"{ex.name}: out of memory", member))
            except RecursionError:
                errors.append(ScanError(ErrorCode.TOO_DEEP, f"{ex.name}: structure nested too deeply", member))
            except Exception as exc:  # a parser bug on hostile bytes must not end the scan
                errors.append(ScanError(ErrorCode.CORRUPT, f"{ex.name}: {type(exc).__name__}: {exc}"[:300], member))
        else:
            if _looks_like_document(mime):
                errors.append(ScanError(ErrorCode.UNSUPPORTED, f"no extractor reads {mime}", member))
            if self.rules.prefilter(data):
                # No reader for this type (a database, a proprietary format): its text runs are
                # read as `strings` would, in every encoding, and classified as text.
                segments.extend(run_segments(data, member, self.rules.prefilter_offsets(data)))
        if sources is not None and any(s.role == RUN_ROLE for s in segments):
            sources.add("runs")
        findings.extend(_classify_bounded(segments))
        self._user_matches(data, segments, member, findings)
        return mime

    def _member(self, item: Member, parent: str | None, depth: int, budget: Budget,
                findings: list[Finding], errors: list[ScanError], sources: set[str] | None = None) -> None:
        child = f"{parent}!{item.name}" if parent else item.name
        if depth + 1 > self.config.limits.max_depth:
            errors.append(ScanError(ErrorCode.TOO_DEEP, f"nesting deeper than {self.config.limits.max_depth}", child))
            return
        self._scan_item(item.data, child, depth + 1, budget, item.name.rsplit("/", 1)[-1], findings, errors,
                        sources=sources)

    def _user_matches(self, data: bytes, segments: list[Segment], member: str | None,
                      findings: list[Finding]) -> None:
        if not self.rules.has_user_rules:
            return
        matches = self.rules.user_matches(data)
        if segments:
            text = "\n".join(s.text for s in segments).encode("utf-8", errors="replace")
            matches += [m for m in self.rules.user_matches(text) if m.namespace == NS_KEYWORD]
        for m in matches:
            kind = Kind.KEYWORD if m.namespace == NS_KEYWORD else Kind.RULE
            findings.append(Finding(level=None, kind=kind, text=m.text, member=member,
                                    rule=f"{m.namespace}:{m.rule}", confidence=1.0))

    # -- large plain text ----------------------------------------------------------------------
    def _scan_large(self, fh, shown: str, size: int) -> FileResult | None:  # type: ignore[no-untyped-def]
        """Stream a large plain-text file chunk by chunk, data regions only; None for a large
        file of another type that is read whole (documents and archives up to the member limit).

        Chunks are cut at line ends, so no marking is split. Holes of a sparse file read as
        zeros and cannot hold text: they are skipped (SEEK_DATA/SEEK_HOLE), so a 3 GiB sparse
        file costs what its data costs. Files above HASH_LIMIT, or sparse, are not hashed."""
        fd = fh.fileno()
        regions = list(_data_regions(fd, size))
        head = os.pread(fd, STREAM_CHUNK, regions[0][0]) if regions else b""
        mime = identify(head)
        ex = pick(head, mime)
        if ex is None or ex.name != "text":
            if size <= self.config.limits.max_member_size:
                return None  # a large document or archive: parsed whole, like a member of that size
            return FileResult(shown, size=size, mime=mime, errors=(ScanError(
                ErrorCode.TOO_LARGE, f"{size} bytes of {mime}: above {self.config.limits.max_member_size} bytes only "
                "plain text is streamed"),))
        dense = sum(n for _, n in regions) == size
        sha = hashlib.sha256() if self.config.hash_files != "none" and dense and size <= HASH_LIMIT else None
        findings: list[Finding] = []
        first = True
        lines_before = 0  # newlines before the current chunk: findings report the file's line
        for start, length in regions:
            off, end, carry = start, start + length, b""
            while off < end:
                chunk = os.pread(fd, min(STREAM_CHUNK, end - off), off)
                if not chunk:
                    break
                off += len(chunk)
                if sha is not None:
                    sha.update(chunk)
                buf = carry + chunk
                if off < end:
                    cut = buf.rfind(b"\n") + 1 or len(buf)
                    if cut < len(buf) and buf[cut : cut + 1] == b"\x00":
                        cut += 1  # keep UTF-16LE code units whole
                    buf, carry = buf[:cut], buf[cut:]
                else:
                    carry = b""
                segs: list[Segment] = []
                if self.rules.prefilter(buf):
                    text, _ = decode(buf)
                    segs = [Segment(text, None, "body", index=0 if first else TOP_LINES)]
                    findings.extend(_classify_bounded(segs, lines_before))
                    lines_before += text.count("\n")
                else:
                    lines_before += buf.count(b"\n")
                # Site rules and keywords fire on streamed text as on any other (`--rules`, `--keywords`).
                self._user_matches(buf, segs, None, findings)
                first = False
        findings = _dedupe(findings)
        keep = sha is not None and (self.config.hash_files == "all" or findings)
        return FileResult(shown, tuple(findings), (), size=size, mime=mime,
                          sha256=sha.hexdigest() if keep and sha is not None else None)


#: A running-text segment is classified in pieces of about this many characters when it is this
#: large and holds more than `_SPLIT_CANDIDATES` marking-shaped spots (see `_classify_bounded`).
_SPLIT_CHARS = 32 * 1024
_SPLIT_CANDIDATES = 2000
_CANDIDATE_WORDS = vocabulary.CANDIDATE_WORDS


def _classify_bounded(segments: list[Segment], lines_before: int = 0) -> list[Finding]:
    """`classify`, with the work on one huge segment full of marking-shaped lines bounded.

    The classifier looks at each candidate line's neighbours by scanning its segment from the
    start, so its cost grows with (candidates × segment length): 100,000 marked lines in a 1.4 MB
    text file took a minute, 5 million hit the deadline; a 16 MB mail subject of level words, the
    same. Such a segment is classified in pieces of about `_SPLIT_CHARS` cut at line ends; later
    pieces do not count as the top of the document, and line numbers stay those of the whole
    segment; a line longer than the piece (no marking stands on its own in it) is cut at a hard
    length. Ordinary documents (few candidates) are classified exactly as before.
    `lines_before`: as for `classify`, the one segment is a chunk of a streamed text."""
    out: list[Finding] = []
    plain: list[Segment] = []
    for seg in segments:
        text = seg.text
        if len(text) <= 2 * _SPLIT_CHARS or not _more_than(text, _CANDIDATE_WORDS, _SPLIT_CANDIDATES):
            plain.append(seg)
            continue
        pos, lines = 0, lines_before
        while pos < len(text):
            # At a line end; inside one giant line (a 16 MB mail subject) at a hard length.
            cut = text.find("\n", pos + _SPLIT_CHARS, pos + 2 * _SPLIT_CHARS)
            end = min(len(text), pos + _SPLIT_CHARS) if cut < 0 else cut + 1
            piece = text[pos:end]
            sub = dataclasses.replace(seg, text=piece, index=seg.index if pos == 0 else max(seg.index, TOP_LINES))
            out.extend(classify([sub], lines))
            lines += piece.count("\n")
            pos = end
    if plain:
        out[:0] = classify(plain, lines_before)
    return out


def _more_than(text: str, words: tuple[str, ...], limit: int) -> bool:
    """`sum(text.count(w) for w in words) > limit`, without counting the other words once one
    alone is past it (密 is: a 1 MB secrecy text holds thousands)."""
    n = 0
    for w in words:
        n += text.count(w)
        if n > limit:
            return True
    return False


def _read_all(fd: int, size: int) -> bytes:
    """The whole file, normally in one read (no buffered-reader object per file).

    A read that returns exactly the `size` fstat gave has read the file (a regular file reads
    short only at its end), so no second read asks for the end; a file that grew (size + 1
    bytes came) or one read short (a network file system) is read on to its end."""
    first = os.read(fd, size + 1)
    if len(first) == size:
        return first
    parts = [first]
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


#: Larger files are not hashed (a content hash of a multi-GB file is not worth its read time).
HASH_LIMIT = 1024 ** 3


def _data_regions(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of the data regions of a file; the whole file where holes are unknown."""
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                return
            yield off, size - off  # the file system cannot tell: read everything
            return
        try:
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError:
            end = size
        if end <= start:
            return
        yield start, min(end, size) - start
        off = end


_DOC_PREFIXES = ("application/vnd.", "application/msword", "application/pdf", "application/zip",
                 "application/x-ole-storage", "application/cdfv2", "application/x-7z", "application/gzip",
                 "application/x-gzip", "application/x-tar", "application/x-bzip2", "application/x-xz",
                 "application/x-rar", "application/rtf", "text/rtf", "message/", "application/x-cfb")
_NOT_DOC = ("application/vnd.sqlite3", "application/vnd.microsoft.portable-executable")


def _looks_like_document(mime: str) -> bool:
    """Types that hold documents: an item of such a type that nothing reads is `unsupported`."""
    m = mime.lower()
    return m.startswith(_DOC_PREFIXES) and not m.startswith(_NOT_DOC)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen = set()
    out = []
    for f in findings:
        key = (f.kind, f.text, f.member, f.line, f.rule)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
