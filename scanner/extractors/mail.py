"""Internet mail (.eml, RFC 5322/MIME) and mbox files, with the standard library `email` package.

Yields the Subject (a marking in the subject line classifies the message) and classification
headers as standalone segments, every inline text part decoded in its declared charset (lying or
unknown charsets fall back to the project's one decoder; GB2312/GBK are read as their superset
GB18030), HTML parts as members for the HTML extractor, and attachments and attached messages
(`message/rfc822`) as members for recursive scanning, uuencoded files inside a plain-text body
too. S/MIME- or PGP-encrypted content is reported as `encrypted`.

libmagic calls most mail `text/plain`, so `sniff` recognises real RFC 822 header blocks and the
extractor outranks the plain-text reader.
"""
from __future__ import annotations

import email
import email.errors
import email.header
import email.message
import email.parser
import mimetypes
import re
from collections.abc import Iterator
from email import policy

from scanner.decode import decode
from scanner.extractors.base import Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

#: Header names that identify a mail header block (lower case).
KNOWN_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "received", "mime-version", "content-type",
    "message-id", "return-path", "reply-to", "sender", "delivered-to", "x-mailer", "user-agent",
    "content-transfer-encoding", "in-reply-to", "references", "x-originating-ip", "thread-topic",
    "thread-index", "importance", "x-priority", "dkim-signature", "authentication-results",
    "arc-seal", "x-received", "list-id", "organization", "disposition-notification-to",
})
_HEADER_LINE = re.compile(rb"^([!-9;-~]{1,76}):[ \t]?")
# `\S.*`, not `\S+.*` (the same lines): with both able to take the same characters, a long
# `From xxxx…` line cost time quadratic in its length (20 KB: 4 s; 39 KB: 16 s).
_MBOX_FROM = re.compile(rb"^From \S.*\d{4}\s*$")
#: Extra headers some mail and OA systems use to carry a classification.
_CLASS_HEADER = re.compile(r"classif|密级|security-?label|protective-?marking|x-secret", re.IGNORECASE)
#: Declared charsets whose real content is routinely a superset.
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "csgb2312": "gb18030", "gb_2312-80": "gb18030", "chinese": "gb18030",
    "big5": "big5hkscs", "x-x-big5": "big5hkscs", "cn-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949", "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8",
    "us-ascii": "utf-8", "ascii": "utf-8", "iso-8859-1": "cp1252", "latin1": "cp1252",
}
SNIFF_BYTES = 16 * 1024


def looks_like_mail(data: bytes) -> bool:
    """True for an RFC 822 header block (or an mbox) at the start of `data`."""
    # Cheapest rejection first: the first line opens with a header name ([!-9;-~]) or `From `,
    # so a first byte (after a BOM) outside printable ASCII — any Chinese text — is no mail,
    # without the copy and two regexes below (~0.9 µs of every text file of a scan; issue 17).
    if not b"!" <= (data[3:4] if data[:3] == b"\xef\xbb\xbf" else data[:1]) <= b"~":
        return False
    head = data[:SNIFF_BYTES]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    # Then the first line itself: this still runs on every ASCII text file of a scan.
    nl = head.find(b"\n", 0, 2000)
    first = head[: nl if nl != -1 else 2000].rstrip(b"\r")
    if not (_MBOX_FROM.match(first) or _HEADER_LINE.match(first)):
        return False
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if lines and _MBOX_FROM.match(lines[0]):
        lines = lines[1:]
    known: set[str] = set()
    seen_header = False
    for line in lines[:200]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            if not seen_header:
                return False
            continue
        m = _HEADER_LINE.match(line)
        if not m:
            return False
        seen_header = True
        name = m.group(1).decode("ascii").lower()
        if name in KNOWN_HEADERS:
            known.add(name)
    else:
        if len(lines) > 200:
            return False
    # Two distinct well-known headers: a stray "Subject:" line opening a text file is not mail.
    return len(known) >= 2


def _charset_decode(payload: bytes, charset: str | None) -> str:
    """Decode a text part: the declared charset when it really fits, else the one decoder."""
    if charset:
        cs = _CHARSET_ALIASES.get(charset.lower().strip(), charset.lower().strip())
        try:
            return payload.decode(cs)
        except (UnicodeDecodeError, LookupError):
            pass
    return decode(payload)[0]


def decode_header_value(raw: str) -> str:
    """RFC 2047 encoded words in any charset, and raw 8-bit header bytes (UTF-8 or GBK)."""
    try:
        parts = email.header.decode_header(raw)
    except (email.errors.HeaderParseError, ValueError, LookupError, AssertionError):
        parts = [(raw, None)]
    out = []
    for chunk, cs in parts:
        if isinstance(chunk, str):
            # Undecoded text; 8-bit bytes surface as surrogates from the parser.
            raw_bytes = chunk.encode("utf-8", "surrogateescape")
            out.append(decode(raw_bytes)[0] if not raw_bytes.isascii() else chunk)
        else:
            out.append(_charset_decode(chunk, cs))
    text = "".join(out)
    return re.sub(r"\r?\n[ \t]+", " ", text).strip()


def _raw_header(msg: email.message.Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def _filename(part: email.message.Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError, AttributeError, IndexError):
        name = None
    wrapped = any("=?" in (_raw_header(part, h) or "").split(";", 1)[0]
                  for h in ("content-disposition", "content-type"))
    if name and "=?" not in name and not wrapped:
        return str(name)
    # Whole headers wrapped in encoded words (`Content-Disposition: =?utf-8?b?…?=`): decode the
    # header first, then read the parameter.
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if not raw:
            continue
        value = decode_header_value(raw)
        m = re.search(rf'{param}\*?\s*=\s*(?:"([^"]*)"|([^;\s]+))', value, re.IGNORECASE)
        if m:
            got = m.group(1) if m.group(1) is not None else m.group(2)
            if got.lower().startswith("utf-8''"):
                from urllib.parse import unquote

                got = unquote(got[7:])
            return decode_header_value(got)
    return str(name) if name else None


def _is_attachment(part: email.message.Message) -> bool:
    disp = decode_header_value(_raw_header(part, "content-disposition") or "")
    return "attachment" in disp.lower() or _filename(part) is not None


def _payload(part: email.message.Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, AssertionError):
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _content_type(part: email.message.Message) -> str:
    try:
        return part.get_content_type()
    except (ValueError, LookupError, TypeError, AttributeError, IndexError):
        return "application/octet-stream"


def _charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except (ValueError, LookupError, TypeError, AttributeError, IndexError):
        return None


class MailExtractor(Extractor):
    """RFC 822 / MIME messages (.eml) and mbox files."""

    name = "mail"
    mimetypes = ("message/rfc822", "message/news", "application/mbox")
    priority = 10

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        if super().sniff(data, mime):
            return True
        return (mime.startswith("text/") or mime in ("application/octet-stream", "application/x-empty")) \
            and looks_like_mail(data)

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        messages = _split_mbox(data)
        if len(messages) > 1:
            for n, raw in enumerate(messages, 1):
                if not ctx.budget.take_member():
                    yield ScanError(ErrorCode.BOMB, f"more than {ctx.limits.max_members} members", ctx.member)
                    return
                yield Member(f"message {n}.eml", raw)
            return
        walker = _Walker(ctx)
        try:
            msg = email.message_from_bytes(data, policy=policy.default)
        except RecursionError:
            # MIME parts nested thousands deep: the parser recurses per level. The headers are
            # still read (a Subject marking is not lost); the body is reported unread.
            yield ScanError(ErrorCode.TOO_DEEP, "MIME structure nested too deeply: body not read", ctx.member)
            try:
                head = email.parser.BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
                yield from walker.headers(head)
            except Exception:  # noqa: BLE001 - best effort on a message already reported
                pass
            return
        except Exception as exc:  # noqa: BLE001 - the parser has no documented exception set
            yield ScanError(ErrorCode.CORRUPT, f"unparsable mail: {exc}", ctx.member)
            return
        try:
            yield from walker.headers(msg)
            yield from walker.visit(msg, "")
        except RecursionError:
            yield ScanError(ErrorCode.TOO_DEEP, "MIME structure nested too deeply", ctx.member)
        except Exception as exc:  # noqa: BLE001 - email's lenient parser has no closed error set
            yield ScanError(ErrorCode.CORRUPT, f"malformed mail: {type(exc).__name__}: {exc}", ctx.member)


def _split_mbox(data: bytes) -> list[bytes]:
    if not _MBOX_FROM.match(data[:1024].split(b"\n", 1)[0].rstrip(b"\r")):
        return [data]
    parts = re.split(rb"(?m)^(?=From \S.*\d{4}\s*$)", data)
    msgs = [p.split(b"\n", 1)[1] if b"\n" in p else b"" for p in parts if p.strip()]
    # mboxrd/mboxo quoting of body lines that start with "From ".
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", m) for m in msgs]


class _Walker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.text_parts = 0

    def headers(self, msg: email.message.Message) -> Iterator[ExtractItem]:
        raw = _raw_header(msg, "subject")
        if raw is not None:
            subject = decode_header_value(raw)
            if subject:
                yield Segment(subject, self.ctx.sub("subject"), role="subject", standalone=True, index=0)
        for key, value in msg.raw_items():
            if _CLASS_HEADER.search(key):
                text = decode_header_value(str(value))
                if text:
                    yield Segment(text, self.ctx.sub(f"header {key}"), role="property",
                                  standalone=True, key=key)

    def visit(self, part: email.message.Message, num: str) -> Iterator[ExtractItem]:
        ctype = _content_type(part)
        if ctype in ("multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime") \
                and "signed-data" not in str(part.get_param("smime-type") or ""):
            yield ScanError(ErrorCode.ENCRYPTED, f"{ctype} content (S/MIME or PGP)", self.ctx.sub(f"part {num or 1}"))
            return
        if ctype in ("message/rfc822", "message/global"):
            yield from self._attached_message(part, num)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for i, child in enumerate(payload, 1):
                    if isinstance(child, email.message.Message):
                        yield from self.visit(child, f"{num}.{i}" if num else str(i))
            return
        if ctype in ("application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"):
            return
        yield from self._leaf(part, ctype, num or "1")

    def _attached_message(self, part: email.message.Message, num: str) -> Iterator[ExtractItem]:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        try:
            data = inner.as_bytes(policy=policy.compat32) if isinstance(inner, email.message.Message) else _payload(part)
        except Exception:  # noqa: BLE001 - re-serialising a malformed message
            data = _payload(part)
        name = _filename(part) or f"attached message {num or 1}.eml"
        yield from self._member(name, data)

    def _leaf(self, part: email.message.Message, ctype: str, num: str) -> Iterator[ExtractItem]:
        data = _payload(part)
        attach = _is_attachment(part)
        if ctype == "text/plain" and (not attach or not _filename(part)):
            blocks = _uu_blocks(data, _charset(part)) if b"begin " in data else []
            for uu_name, blob, _, _ in blocks:  # uuencoded attachments in the body (older clients)
                yield from self._member(uu_name, blob)
            if _uu_left(data, blocks):  # the rest stay in the body text, undecoded: say so
                yield ScanError(ErrorCode.BOMB, f"more than {_MAX_UU_BLOCKS} uuencoded files in one body: "
                                "the rest not decoded", self.ctx.sub(f"part {num}"))
            for _, _, start, end in reversed(blocks):
                data = data[:start] + data[end:]
            text = _charset_decode(data, _charset(part))
            if _PGP_MESSAGE in text:
                yield ScanError(ErrorCode.ENCRYPTED, "PGP-encrypted body", self.ctx.sub(f"part {num}"))
            if text.strip():
                where = "body" if self.text_parts == 0 else f"body {self.text_parts + 1}"
                self.text_parts += 1
                yield Segment(text, self.ctx.sub(where), role="body", standalone=False)
            return
        if not attach and ctype == "text/html":
            # Handed to the HTML extractor as UTF-8 with a BOM, so that the charset declared in
            # the MIME header (which HTML meta tags often contradict or lack) is kept.
            text = _charset_decode(data, _charset(part))
            yield from self._member(f"body{'' if num == '1' else ' ' + num}.html",
                                    b"\xef\xbb\xbf" + text.encode("utf-8"))
            return
        name = _filename(part)
        if not name:
            ext = mimetypes.guess_extension(ctype) or ".bin"
            name = f"part {num}{ext}"
        yield from self._member(name, data)

    def _member(self, name: str, data: bytes) -> Iterator[ExtractItem]:
        if not self.ctx.budget.take_member():
            yield ScanError(ErrorCode.BOMB, f"more than {self.ctx.limits.max_members} members", self.ctx.member)
            return
        yield Member(name, data)


_PGP_MESSAGE = "-----BEGIN PGP MESSAGE-----"
_UU_BEGIN = re.compile(rb"^begin [0-7]{3,4} ([^\r\n]{1,255})\r?$", re.MULTILINE)
_UU_END = re.compile(rb"^end\r?$", re.MULTILINE)
_MAX_UU_BLOCKS = 100


def _uu_blocks(data: bytes, charset: str | None) -> list[tuple[str, bytes, int, int]]:
    """(file name, content, start, end) of each uuencoded file (`begin 644 name` … `end`) in a
    plain-text body, as Outlook Express and other older clients attach files; the name is in the
    body's charset. Lines that do not decode are skipped (never an exception); decoding never
    grows the data."""
    import binascii

    out: list[tuple[str, bytes, int, int]] = []
    pos = 0
    while len(out) < _MAX_UU_BLOCKS:
        m = _UU_BEGIN.search(data, pos)
        if m is None:
            break
        end = _UU_END.search(data, m.end())
        stop = end.start() if end else len(data)
        chunks: list[bytes] = []
        for line in data[m.end():stop].splitlines():
            line = line.rstrip(b"\r")
            if not line or line in (b"`", b" "):
                continue
            try:
                chunks.append(binascii.a2b_uu(line))
            except binascii.Error:
                n = (((line[0] - 32) & 63) * 4 + 5) // 3  # some encoders pad lines: cut to length
                try:
                    chunks.append(binascii.a2b_uu(line[:n]))
                except binascii.Error:
                    continue
        name = _charset_decode(m.group(1).strip(), charset).strip() or "uuencoded"
        out.append((name, b"".join(chunks), m.start(), end.end() if end else len(data)))
        pos = end.end() if end else len(data)
    return out


def _uu_left(data: bytes, blocks: list[tuple[str, bytes, int, int]]) -> bool:
    """Are there uuencoded files beyond the `_MAX_UU_BLOCKS` decoded?"""
    return len(blocks) >= _MAX_UU_BLOCKS and _UU_BEGIN.search(data, blocks[-1][3]) is not None
