"""Builders for the document-extractor tests: OOXML/ODF/OFD zips made in memory."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from scanner.extractors.base import Budget, Context, Limits
from scanner.model import Member, ScanError, Segment

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def ctx(mime: str = "", limits: Limits | None = None, member: str | None = None) -> Context:
    lim = limits or Limits()
    return Context(member=member, depth=0, mime=mime, limits=lim, budget=Budget(lim))


def make_zip(parts: dict[str, bytes | str], encrypted: tuple[str, ...] = (),
             stored: bool = False) -> bytes:
    buf = io.BytesIO()
    comp = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", comp) as zf:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = comp
            zf.writestr(info, data.encode("utf-8") if isinstance(data, str) else data)
    out = bytearray(buf.getvalue())
    # zipfile clears the flags it writes: set the "encrypted" bit in both headers by hand.
    for info in zipfile.ZipFile(io.BytesIO(bytes(out))).infolist():
        if info.filename in encrypted:
            out[info.header_offset + 6] |= 0x1
            pos = out.find(b"PK\x01\x02", 0)
            while pos != -1:
                nlen = int.from_bytes(out[pos + 28:pos + 30], "little")
                if out[pos + 46:pos + 46 + nlen] == info.filename.encode():
                    out[pos + 8] |= 0x1
                pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def run(extractor: object, data: bytes, c: Context | None = None) -> list[Segment | Member | ScanError]:
    return list(extractor.extract(data, c or ctx()))  # type: ignore[attr-defined]


def segments(items: list[object]) -> list[Segment]:
    return [i for i in items if isinstance(i, Segment)]


def errors(items: list[object]) -> list[ScanError]:
    return [i for i in items if isinstance(i, ScanError)]


def texts(items: list[object]) -> list[str]:
    return [s.text for s in segments(items)]


# ---------------------------------------------------------------- OOXML

def _rels(rels: list[tuple[str, str, str]]) -> str:
    body = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{tg}"/>' for i, t, tg in rels)
    return f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">{body}</Relationships>'


OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def docx(body: str, *, parts: dict[str, str] | None = None, custom: dict[str, str] | None = None,
         core: dict[str, str] | None = None, content_types_first: bool = True) -> bytes:
    """A minimal .docx: `body` is the inside of w:body; extra parts as given."""
    doc = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}" '
           f'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
           f'xmlns:v="urn:schemas-microsoft-com:vml" '
           f'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
           f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
           f'<w:body>{body}</w:body></w:document>')
    files: dict[str, bytes | str] = {}
    ct = '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
    if content_types_first:
        files["[Content_Types].xml"] = ct
    files["_rels/.rels"] = _rels([("rId1", f"{OD}/officeDocument", "word/document.xml")])
    files["word/document.xml"] = doc
    for name, xml in (parts or {}).items():
        files[name] = xml
    if custom:
        props = "".join(
            f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{i + 2}" name="{k}">'
            f"<vt:lpwstr>{v}</vt:lpwstr></property>" for i, (k, v) in enumerate(custom.items()))
        files["docProps/custom.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?><Properties '
            'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
            'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            f"{props}</Properties>")
    if core:
        els = "".join(f"<{k}>{v}</{k}>" for k, v in core.items())
        files["docProps/core.xml"] = (
            '<?xml version="1.0"?><cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">' + els + "</cp:coreProperties>")
    if not content_types_first:
        files["[Content_Types].xml"] = ct
    return make_zip(files)


def word_part(root: str, inner: str) -> str:
    return f'<?xml version="1.0"?><w:{root} xmlns:w="{W_NS}">{inner}</w:{root}>'


def p(*runs: str) -> str:
    return "<w:p>" + "".join(f"<w:r><w:t>{r}</w:t></w:r>" for r in runs) + "</w:p>"


S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def xlsx(sheet_data: str, *, shared: list[str] | None = None, header_footer: str = "",
         sheet_name: str = "汇总", parts: dict[str, str] | None = None) -> bytes:
    wb = (f'<?xml version="1.0"?><workbook xmlns="{S_NS}" xmlns:r="{R_NS}"><sheets>'
          f'<sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>')
    rels = _rels([("rId1", f"{OD}/worksheet", "worksheets/sheet1.xml"),
                  ("rId2", f"{OD}/sharedStrings", "sharedStrings.xml")])
    sheet = (f'<?xml version="1.0"?><worksheet xmlns="{S_NS}"><sheetData>{sheet_data}</sheetData>'
             f"{header_footer}</worksheet>")
    files: dict[str, bytes | str] = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": _rels([("rId1", f"{OD}/officeDocument", "xl/workbook.xml")]),
        "xl/workbook.xml": wb,
        "xl/_rels/workbook.xml.rels": rels,
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared is not None:
        sis = "".join(f"<si><t>{s}</t></si>" for s in shared)
        files["xl/sharedStrings.xml"] = f'<?xml version="1.0"?><sst xmlns="{S_NS}">{sis}</sst>'
    files.update(parts or {})
    return make_zip(files)


P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"


def _sp(text: str, ph: str | None = None) -> str:
    nv = f'<p:nvPr><p:ph type="{ph}"/></p:nvPr>' if ph else "<p:nvPr/>"
    return (f'<p:sp><p:nvSpPr><p:cNvPr id="2" name="x"/><p:cNvSpPr/>{nv}</p:nvSpPr><p:spPr/>'
            f"<p:txBody><a:bodyPr/>{text}</p:txBody></p:sp>")


def apara(*runs: str) -> str:
    return "<a:p>" + "".join(f"<a:r><a:t>{r}</a:t></a:r>" for r in runs) + "</a:p>"


def pptx(slide_shapes: str, notes_shapes: str | None = None, *, parts: dict[str, str] | None = None,
         slide_rels: list[tuple[str, str, str]] | None = None) -> bytes:
    """A minimal .pptx with one slide; `slide_rels` (Id, type, target) are added to the slide's
    relationships and `parts` to the package."""
    ns = f'xmlns:p="{P_NS}" xmlns:a="{A_NS}" xmlns:r="{R_NS}"'
    pres = (f'<?xml version="1.0"?><p:presentation {ns}><p:sldIdLst><p:sldId id="256" r:id="rId2"/>'
            f"</p:sldIdLst></p:presentation>")
    slide = f'<?xml version="1.0"?><p:sld {ns}><p:cSld><p:spTree>{slide_shapes}</p:spTree></p:cSld></p:sld>'
    files: dict[str, bytes | str] = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": _rels([("rId1", f"{OD}/officeDocument", "ppt/presentation.xml")]),
        "ppt/presentation.xml": pres,
        "ppt/_rels/presentation.xml.rels": _rels([("rId2", f"{OD}/slide", "slides/slide1.xml")]),
        "ppt/slides/slide1.xml": slide,
    }
    rels = list(slide_rels or [])
    if notes_shapes is not None:
        rels.append(("rId1", f"{OD}/notesSlide", "../notesSlides/notesSlide1.xml"))
        files["ppt/notesSlides/notesSlide1.xml"] = (
            f'<?xml version="1.0"?><p:notes {ns}><p:cSld><p:spTree>{notes_shapes}</p:spTree></p:cSld></p:notes>')
    if rels:
        files["ppt/slides/_rels/slide1.xml.rels"] = _rels(rels)
    files.update(parts or {})
    return make_zip(files)


# ---------------------------------------------------------------- OFD

OFD_NS = "http://www.ofdspec.org/2016"


def ofd(pages: list[str], *, custom: dict[str, str] | None = None, template: str | None = None,
        attachments: dict[str, bytes] | None = None, tags: str | None = None) -> bytes:
    """An OFD package; each page is the inside of ofd:Layer; `attachments` (file name -> bytes)
    are listed in Doc_0/Attachs/Attachments.xml."""
    cds = ""
    if custom:
        cds = "<ofd:CustomDatas>" + "".join(
            f'<ofd:CustomData Name="{k}">{v}</ofd:CustomData>' for k, v in custom.items()) + "</ofd:CustomDatas>"
    files: dict[str, bytes | str] = {
        "OFD.xml": (f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0" '
                    f'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID><ofd:Title>通知</ofd:Title>'
                    f"{cds}</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"),
    }
    tpl = ""
    if template is not None:
        tpl = '<ofd:TemplatePage ID="100" BaseLoc="Tpls/Tpl_0/Content.xml"/>'
        files["Doc_0/Tpls/Tpl_0/Content.xml"] = (
            f'<?xml version="1.0"?><ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content><ofd:Layer ID="1">'
            f"{template}</ofd:Layer></ofd:Content></ofd:Page>")
    page_refs = "".join(f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
    att = ""
    if attachments:
        att = "<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments>"
        files["Doc_0/Attachs/Attachments.xml"] = (
            f'<?xml version="1.0"?><ofd:Attachments xmlns:ofd="{OFD_NS}">' + "".join(
                f'<ofd:Attachment ID="{60 + i}" Name="{name}"><ofd:FileLoc>{name}</ofd:FileLoc></ofd:Attachment>'
                for i, name in enumerate(attachments)) + "</ofd:Attachments>")
        for name, blob in attachments.items():
            files[f"Doc_0/Attachs/{name}"] = blob
    ctags = ""
    if tags is not None:  # one custom-tag file (GB/T 33190 CustomTags), e.g. a 公文 tag with 密级
        ctags = "<ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags>"
        files["Doc_0/Tags/CustomTags.xml"] = (
            f'<?xml version="1.0"?><ofd:CustomTags xmlns:ofd="{OFD_NS}"><ofd:CustomTag NameSpace="urn:gongwen">'
            "<ofd:FileLoc>Tag_GW.xml</ofd:FileLoc></ofd:CustomTag></ofd:CustomTags>")
        files["Doc_0/Tags/Tag_GW.xml"] = tags
    files["Doc_0/Document.xml"] = (
        f'<?xml version="1.0"?><ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData>'
        f'<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea>{tpl}'
        f"</ofd:CommonData><ofd:Pages>{page_refs}</ofd:Pages>{att}{ctags}</ofd:Document>")
    for i, layer in enumerate(pages):
        use_tpl = '<ofd:Template TemplateID="100"/>' if template is not None else ""
        files[f"Doc_0/Pages/Page_{i}/Content.xml"] = (
            f'<?xml version="1.0"?><ofd:Page xmlns:ofd="{OFD_NS}">{use_tpl}<ofd:Content><ofd:Layer ID="2">'
            f"{layer}</ofd:Layer></ofd:Content></ofd:Page>")
    return make_zip(files)


def text_object(x: float, y: float, text: str, size: float = 4.2, oid: int = 1) -> str:
    dx = " ".join([str(size)] * max(0, len(text) - 1))
    return (f'<ofd:TextObject ID="{oid}" Boundary="{x} {y} 170 6" Font="3" Size="{size}">'
            f'<ofd:TextCode X="0" Y="4.5" DeltaX="{dx}">{text}</ofd:TextCode></ofd:TextObject>')
