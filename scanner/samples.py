"""A small sample set shipped with the project for `baomi demo` (users do not have ../shared).

Everything is generated from the embedded text below: marked 公文 heads in the encodings and
typography real files carry, prose that only mentions level words, an English banner, and the
same marking inside a docx, a zip and a mail attachment.
"""
from __future__ import annotations

import base64
import io
import os
import zipfile
from email.message import EmailMessage

_BODY = ("各区县人民政府办公室，市政府各部门：\n"
         "为进一步加强办公室工作，现将有关事项通知如下。一要提高政治站位，严格执行保密制度，"
         "涉密文件按规定登记、传阅和清退；二要加强督查督办，确保各项工作落到实处。\n")
_HEAD = "000012\n{marking}\n特急\n东陵区人民政府办公室文件\n东政办发〔2026〕12号\n关于加强办公室工作的通知\n"
_PROSE = ("保密工作是党和国家的一项重要工作。国家秘密的密级分为绝密、机密、秘密三级。"
          "机关工作人员必须做到不泄露国家机密，对标注“机密★5年”的文件，不得在非涉密计算机上处理。\n")
_ENGLISH = "TOP SECRET//NOFORN\n\nMEMORANDUM FOR THE RECORD\n\nSubject: schedule.\n\nTOP SECRET//NOFORN\n"


def _docx(paragraphs: list[str]) -> bytes:
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="rels" ContentType="application/'
                   'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
                   '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
                   '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
                   '.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                   '</Relationships>')
        z.writestr("word/document.xml", f'<?xml version="1.0" encoding="UTF-8"?><w:document {ns}><w:body>'
                   f"{body}</w:body></w:document>")
    return buf.getvalue()


def build_samples(target: str) -> int:
    """Write the sample set into `target`; returns the number of files written."""
    os.makedirs(target, exist_ok=True)
    files: dict[str, bytes] = {
        "通知-utf8.txt": (_HEAD.format(marking="机密★10年") + _BODY).encode("utf-8"),
        "通知-gbk.txt": (_HEAD.format(marking="秘密★6个月") + _BODY).encode("gbk"),
        "通知-utf16.txt": (_HEAD.format(marking="绝密★长期") + _BODY).encode("utf-16"),
        "通知-big5.txt": "000013\n機密★2030年12月31日\n特急\n關於加強辦公室工作的通知\n".encode("big5"),
        "通知-全角.txt": (_HEAD.format(marking="秘 密 ☆ １０ 年") + _BODY).encode("utf-8"),
        "保密学习材料.txt": (_PROSE * 3).encode("utf-8"),
        "memo-en.txt": _ENGLISH.encode("ascii"),
        "会议纪要.docx": _docx(["000014", "机密★5年", "会议纪要", _BODY.strip()]),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("材料/通知.txt", (_HEAD.format(marking="秘密★项目验收后解密") + _BODY).encode("utf-8"))
        z.writestr("材料/学习.txt", _PROSE.encode("utf-8"))
    files["材料.zip"] = buf.getvalue()
    msg = EmailMessage()
    msg["Subject"] = "转发：关于加强办公室工作的通知"
    msg["From"] = "office@example.gov.cn"
    msg["To"] = "staff@example.gov.cn"
    msg.set_content("请查收附件。\n", charset="utf-8")
    msg.add_attachment((_HEAD.format(marking="机密★3年") + _BODY).encode("gb18030"), maintype="text",
                       subtype="plain", filename="通知.txt")
    files["转发通知.eml"] = bytes(msg)
    files["网页.html"] = ("<html><head><meta charset='utf-8'><title>通知</title></head><body><p>"
                          + "".join(f"&#{ord(c)};" for c in "秘密★5年") + "</p><p>正文</p></body></html>"
                          ).encode("utf-8")
    files["照片说明.txt"] = base64.b64decode("")  # an empty file: clean
    for name, data in files.items():
        with open(os.path.join(target, name), "wb") as fh:
            fh.write(data)
    return len(files)
