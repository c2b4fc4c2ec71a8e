"""Mail extractor: headers in any charset, MIME parts, attachments, nesting, hostile input."""
from __future__ import annotations

import base64
import random
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from _bin_fixtures import corpus_file, ctx, errors, members, run, segments, walk

from scanner.extractors.mail import MailExtractor, decode_header_value, looks_like_mail
from scanner.model import ErrorCode, Member, ScanError, Segment

MARK = "机密★10年"
BODY = f"000001\n{MARK}\n特急\n关于开展专项工作的通知\n各单位：镕堃事项如下。\n"  # 镕/堃: GBK, not GB2312


def raw_mail(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body


def subject_of(items: list) -> str:
    [s] = [s for s in segments(items) if s.role == "subject"]
    assert s.standalone and s.index == 0
    return s.text


# ------------------------------------------------------------------------------------ headers

@pytest.mark.parametrize("charset", ["utf-8", "gb18030", "big5"])
@pytest.mark.parametrize("enc", ["b", "q"])
def test_subject_encoded_words_in_any_charset(charset: str, enc: str) -> None:
    text = "機密★5年 關於工作" if charset == "big5" else "机密★5年 关于工作"
    raw = text.encode(charset)
    if enc == "b":
        word = f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    else:
        word = f"=?{charset}?Q?" + "".join(f"={b:02X}" for b in raw) + "?="
    data = raw_mail(f"From: a@b.cn\nTo: c@d.cn\nSubject: {word}\nMIME-Version: 1.0", b"hi\r\n")
    assert subject_of(run(MailExtractor(), data)) == text


def test_subject_gb2312_declared_with_gbk_characters() -> None:
    raw = "机密★镕堃".encode("gbk")
    data = raw_mail(f"From: a@b.cn\nSubject: =?gb2312?B?{base64.b64encode(raw).decode()}?=", b"x")
    assert subject_of(run(MailExtractor(), data)) == "机密★镕堃"


def test_subject_split_inside_a_character_across_encoded_words() -> None:
    raw = "机密★10年".encode()
    w1 = base64.b64encode(raw[:4]).decode()
    w2 = base64.b64encode(raw[4:]).decode()
    data = raw_mail(f"From: a@b.cn\nSubject: =?utf-8?B?{w1}?=\n =?utf-8?B?{w2}?=", b"x")
    assert subject_of(run(MailExtractor(), data)) == "机密★10年"


@pytest.mark.parametrize("charset", ["utf-8", "gbk"])
def test_raw_8bit_subject(charset: str) -> None:
    data = b"From: a@b.cn\r\nTo: c@d.cn\r\nSubject: " + "绝密★长期 通知".encode(charset) + b"\r\n\r\nbody\r\n"
    assert subject_of(run(MailExtractor(), data)) == "绝密★长期 通知"


def test_classification_header_is_a_property() -> None:
    data = raw_mail("From: a@b.cn\nSubject: x\nX-Classification: =?utf-8?B?" +
                    base64.b64encode("机密".encode()).decode() + "?=", b"x")
    [prop] = [s for s in segments(run(MailExtractor(), data)) if s.role == "property"]
    assert prop.text == "机密" and prop.key == "X-Classification" and prop.standalone


def test_decode_header_value_unknown_charset_falls_back() -> None:
    raw = "机密".encode()
    assert decode_header_value(f"=?x-nonsense?B?{base64.b64encode(raw).decode()}?=") == "机密"


# --------------------------------------------------------------------------------------- body

def _single(body: bytes, ctype: str, cte: str) -> bytes:
    return raw_mail(f"From: a@b.cn\nTo: c@d.cn\nSubject: t\nMIME-Version: 1.0\nContent-Type: {ctype}\n"
                    f"Content-Transfer-Encoding: {cte}", body)


def body_text(items: list) -> str:
    bodies = [s for s in segments(items) if s.role == "body"]
    assert all(not s.standalone for s in bodies)
    return "".join(s.text for s in bodies)


def test_base64_gb2312_declared_body_with_gbk_characters() -> None:
    data = _single(base64.encodebytes(BODY.encode("gbk")), 'text/plain; charset="gb2312"', "base64")
    assert body_text(run(MailExtractor(), data)).replace("\r\n", "\n") == BODY


def test_quoted_printable_utf8_body() -> None:
    import quopri

    data = _single(quopri.encodestring(BODY.encode()), "text/plain; charset=utf-8", "quoted-printable")
    assert MARK in body_text(run(MailExtractor(), data))


@pytest.mark.parametrize("declared", ["utf-8", "x-unknown-cs", "us-ascii", ""])
def test_lying_or_unknown_charset_falls_back(declared: str) -> None:
    ctype = f"text/plain; charset={declared}" if declared else "text/plain"
    data = _single(base64.encodebytes(BODY.encode("gb18030")), ctype, "base64")
    assert MARK in body_text(run(MailExtractor(), data))


def test_8bit_big5_body() -> None:
    data = _single("絕密★長期\n關於機密文件的通知\n".encode("big5"), "text/plain; charset=big5", "8bit")
    assert "絕密★長期" in body_text(run(MailExtractor(), data))


def test_html_part_is_a_member_in_utf8_with_bom() -> None:
    msg = MIMEMultipart("alternative")
    msg["Subject"] = "t"
    msg["From"] = "a@b.cn"
    msg.attach(MIMEText(BODY, "plain", "utf-8"))
    msg.attach(MIMEText(f"<html><body><p>{MARK}</p></body></html>", "html", "gb2312"))
    items = run(MailExtractor(), msg.as_bytes())
    [html] = members(items)
    assert html.name.endswith(".html")
    assert html.data.startswith(b"\xef\xbb\xbf") and MARK in html.data[3:].decode()
    assert MARK in body_text(items)


# -------------------------------------------------------------------------------- attachments

def _with_attachment(name: str, payload: bytes) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@b.cn"
    msg["To"] = "c@d.cn"
    msg["Subject"] = "材料"
    msg.set_content("请查收附件。")
    msg.add_attachment(payload, maintype="application", subtype="octet-stream", filename=name)
    return msg


def test_attachment_with_rfc2231_chinese_name() -> None:
    items = run(MailExtractor(), _with_attachment("关于机密工作的通知.docx", b"PK\x03\x04data").as_bytes())
    assert members(items) == [Member("关于机密工作的通知.docx", b"PK\x03\x04data")]
    assert body_text(items).strip() == "请查收附件。"


def test_attachment_whose_disposition_is_one_encoded_word() -> None:
    disp = "attachment; filename=\"材料.docx\""
    word = base64.b64encode(disp.encode()).decode()
    body = (b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: =?utf-8?b?" + word.encode() + b"?=\r\n\r\n" +
            base64.encodebytes(b"DOCX") + b"--XX--\r\n")
    data = raw_mail('From: a@b.cn\nTo: c@d.cn\nSubject: s\nMIME-Version: 1.0\n'
                    'Content-Type: multipart/mixed; boundary="XX"', body)
    assert members(run(MailExtractor(), data)) == [Member("材料.docx", b"DOCX")]


def test_unnamed_binary_part_gets_a_name() -> None:
    msg = MIMEMultipart()
    msg["From"], msg["Subject"] = "a@b.cn", "s"
    msg.attach(MIMEApplication(b"%PDF-1.4 x", "pdf"))
    [m] = members(run(MailExtractor(), msg.as_bytes()))
    assert m.data == b"%PDF-1.4 x" and m.name.endswith(".pdf")


def test_attached_message_is_scanned_recursively() -> None:
    inner = _with_attachment("a.txt", BODY.encode())
    inner.replace_header("Subject", "秘密★5年 内部转发")
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "x@y.cn", "z@y.cn", "Fwd"
    outer.set_content("see attached")
    outer.add_attachment(inner)
    items = run(MailExtractor(), outer.as_bytes())
    [m] = members(items)
    assert m.name.endswith(".eml")
    inner_items = run(MailExtractor(), m.data)
    assert subject_of(inner_items) == "秘密★5年 内部转发"
    assert members(inner_items)[0].data == BODY.encode()
    found = [(p, i) for p, i in walk(outer.as_bytes(), "m.eml") if isinstance(i, Segment) and i.role == "subject"]
    assert any(i.text.startswith("秘密★5年") for _, i in found)


def test_smime_encrypted_is_reported() -> None:
    data = _single(base64.encodebytes(b"\x30\x82garbage"),
                   'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"', "base64")
    [err] = errors(run(MailExtractor(), data))
    assert err.error is ErrorCode.ENCRYPTED


def test_pgp_encrypted_body_is_reported() -> None:
    data = _single(b"-----BEGIN PGP MESSAGE-----\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n", "text/plain", "7bit")
    assert [e.error for e in errors(run(MailExtractor(), data))] == [ErrorCode.ENCRYPTED]


# ---------------------------------------------------------------------------------- sniffing

def test_sniff_accepts_mail_and_rejects_text() -> None:
    mail = _with_attachment("a.txt", b"x").as_bytes()
    assert MailExtractor.sniff(mail, "text/plain")
    assert MailExtractor.sniff(b"Received: from x by y; Tue, 1 Dec 2026\nFrom: a@b\n\nhi", "text/plain")
    assert not MailExtractor.sniff(BODY.encode(), "text/plain")
    assert not MailExtractor.sniff(b"Subject: notes\n\nsome text\n", "text/plain")
    assert not MailExtractor.sniff(b"Note: this\nTODO: that\nmore text without colon\n", "text/plain")
    assert not MailExtractor.sniff(mail, "application/pdf")
    assert MailExtractor.priority > 0


def test_looks_like_mail_with_folded_headers_and_bom() -> None:
    assert looks_like_mail(b"\xef\xbb\xbfFrom: a@b\r\nTo: x\r\n  y\r\nSubject: s\r\n\r\nbody")
    assert not looks_like_mail(b"  From: a\nTo: b\n\n")


def test_looks_like_mail_rejects_on_the_first_byte_what_its_first_line_would() -> None:
    """A first byte (after a BOM) outside printable ASCII ends the test at once: no header name
    nor `From ` line starts that way."""
    assert looks_like_mail(b"From: a@b\nTo: c@d\n\nbody")
    assert looks_like_mail(b"From a@b.cn Tue Dec  1 12:00:00 2026\nFrom: a@b\nTo: c\n\nhi")
    assert looks_like_mail(b"\xef\xbb\xbfX-Mailer: m\nFrom: a@b\nTo: c\n\nbody")
    for head in (b"", b"\xef\xbb\xbf", b"\nFrom: a\nTo: b\n\n", b"\tFrom: a\nTo: b\n\n", b"\rFrom: a\nTo: b\n\n",
                 "发件人: a\nFrom: a\nTo: b\n\n".encode(), b"\xef\xbb\xbf\xef\xbb\xbfFrom: a\nTo: b\n\n",
                 b"\x7fFrom: a\nTo: b\n\n", b":From: a\nTo: b\n\n"):
        assert not looks_like_mail(head), head


def test_mbox_is_split_into_messages() -> None:
    one = _with_attachment("a.txt", b"1").as_bytes()
    two = _with_attachment("b.txt", b"2").as_bytes()
    mbox = b"From a@b.cn Tue Dec  1 12:00:00 2026\n" + one + b"\nFrom c@d.cn Tue Dec  1 12:01:00 2026\n" + two
    assert MailExtractor.sniff(mbox, "text/plain")
    msgs = members(run(MailExtractor(), mbox))
    assert [m.name for m in msgs] == ["message 1.eml", "message 2.eml"]
    assert members(run(MailExtractor(), msgs[1].data))[0].name == "b.txt"


# ---------------------------------------------------------------------------------- hostile

def test_long_from_line_in_an_mbox_is_linear() -> None:
    # Fuzzing shape: `From ` + 39 KB of letters on one line took 16 s to split (quadratic
    # backtracking in the From-line pattern; 1 MB: hours). Kept under tests/fuzz/regressions/mail/.
    import time

    head = b"From a@b.cn Tue Dec  1 12:00:00 2026\nSubject: s\nFrom: a@b.cn\n\nx\n"
    long_line = b"From " + b"a" * 1_000_000 + b"\n"
    split_line = b"From " + b"b" * 1_000_000 + b" 2026\nSubject: t\n\ny\n"
    t = time.process_time()
    msgs = members(run(MailExtractor(), head + long_line + split_line))
    assert time.process_time() - t < 5  # the previous pattern: hours
    assert [m.name for m in msgs] == ["message 1.eml", "message 2.eml"]
    assert msgs[0].data.endswith(long_line) and msgs[1].data == b"Subject: t\n\ny\n"


def test_member_limit() -> None:
    from scanner.extractors.base import Limits

    msg = MIMEMultipart()
    msg["From"], msg["Subject"] = "a@b.cn", "s"
    for i in range(10):
        part = MIMEApplication(b"x", "octet-stream")
        part.add_header("Content-Disposition", "attachment", filename=f"{i}.bin")
        msg.attach(part)
    items = run(MailExtractor(), msg.as_bytes(), ctx(Limits(max_members=3)))
    assert len(members(items)) == 3 and errors(items)[-1].error is ErrorCode.BOMB


def test_damaged_mail_never_raises() -> None:
    rnd = random.Random(3)
    src = _with_attachment("关于.docx", BODY.encode() * 5).as_bytes()
    for _ in range(300):
        buf = bytearray(src[: rnd.randint(1, len(src))])
        for _ in range(rnd.randint(0, 10)):
            if buf:
                buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        for item in run(MailExtractor(), bytes(buf)):
            assert isinstance(item, (Segment, Member, ScanError))


def test_deeply_nested_multipart_does_not_crash() -> None:
    body = b""
    for i in range(3000):
        body += f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'.encode()
    data = raw_mail('From: a@b\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"', body)
    for item in run(MailExtractor(), data):
        assert isinstance(item, (Segment, Member, ScanError))


# ---------------------------------------------------------------------------------- corpus

@pytest.mark.corpus
def test_corpus_qp_body() -> None:
    items = run(MailExtractor(), corpus_file("P-mail/p-mail-0074.eml"))
    assert "机密★2054年4月16日" in body_text(items)
    assert subject_of(items) == "转发文件"


@pytest.mark.corpus
def test_corpus_attachment() -> None:
    items = run(MailExtractor(), corpus_file("P-mail/p-mail-0072.eml"))
    [m] = members(items)
    assert m.name == "材料.docx" and m.data.startswith(b"PK\x03\x04")


@pytest.mark.corpus
def test_corpus_mail_zip_docx_chain() -> None:
    data = corpus_file("P-archive/p-archive-0084.eml")
    [z] = members(run(MailExtractor(), data))
    assert z.name == "材料.zip"
    from scanner.extractors.archive import ZipExtractor

    assert members(run(ZipExtractor(), z.data))[0].name == "通知.docx"


@pytest.mark.corpus
def test_corpus_negative_name_is_decoded_without_spaces() -> None:
    [m] = members(run(MailExtractor(), corpus_file("N-prose/n-prose-0109.eml")))
    assert m.name == "学习材料.docx"


# ------------------------------------------------------------------------------ uuencode

def test_uuencoded_attachments_in_a_plain_body_are_members() -> None:
    import binascii

    def uu(name: bytes, data: bytes, pad: bool = False) -> bytes:
        lines = []
        for i in range(0, len(data), 45):
            line = binascii.b2a_uu(data[i:i + 45]).rstrip(b"\n")
            lines.append(line + (b"  " if pad else b""))  # some encoders pad lines with spaces
        return b"begin 644 " + name + b"\r\n" + b"\r\n".join(lines) + b"\r\n`\r\nend\r\n"

    first = BODY.encode("gbk") * 3
    body = (b"\xc7\xeb\xb2\xe9\xca\xd5\r\n\r\n" + uu("通知.txt".encode("gbk"), first)
            + b"\r\n" + uu(b"b.bin", bytes(range(256)), pad=True) + b"begin 644 broken\r\n")
    data = raw_mail("From: a@b\nSubject: x\nContent-Type: text/plain; charset=gbk", body)
    items = run(MailExtractor(), data)
    assert [(m.name, m.data) for m in members(items)] == [
        ("通知.txt", first), ("b.bin", bytes(range(256))), ("broken", b"")]
    [text] = [s.text for s in segments(items) if s.role == "body"]
    assert text.startswith("请查收") and "begin 644" not in text  # the encoded lines are not body text


def test_mime_nested_thousands_deep_is_too_deep_and_keeps_the_subject() -> None:
    head = "From: a@b\r\nSubject: 机密★5年\r\nMIME-Version: 1.0\r\n"
    body = "".join(f'--B{i}\r\nContent-Type: multipart/mixed; boundary="B{i + 1}"\r\n\r\n' for i in range(3000))
    data = (head + 'Content-Type: multipart/mixed; boundary="B0"\r\n\r\n' + body).encode()
    items = run(MailExtractor(), data)
    assert [e.error for e in errors(items)] == [ErrorCode.TOO_DEEP]
    assert [s.text for s in segments(items) if s.role == "subject"] == ["机密★5年"]


def test_uuencoded_files_beyond_the_cap_are_reported() -> None:
    body = b"".join(b"begin 644 f%d.txt\r\n#86)C\r\n`\r\nend\r\n" % i for i in range(150))
    items = run(MailExtractor(), raw_mail("Content-Type: text/plain", body))
    assert len(members(items)) == 100
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]
