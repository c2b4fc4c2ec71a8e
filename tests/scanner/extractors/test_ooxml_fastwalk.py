"""Issue 17: the faster OOXML walk loses nothing. Its paragraphs, the extractor's segments and the
scanner's findings are compared with the reference walk (`_ooxml_reference`, the walk as it was)
on every XML part of the corpus's and the hostile set's office files, on documents python-docx /
openpyxl / python-pptx write, and on parts built to hold every construct the walk treats apart."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import _ooxml_reference as ref
import pytest
from _docs_fixtures import W_NS, ctx, docx, make_zip, p, pptx, xlsx
from lxml import etree

from scanner.config import ScanConfig
from scanner.engine import Scanner
from scanner.extractors import ooxml
from scanner.extractors.ooxml import OoxmlExtractor, parse_xml

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
OFFICE_EXT = (".docx", ".docm", ".xlsx", ".xlsm", ".pptx", ".pptm")
WALKERS = {"word": ooxml.WORD_WALKER, "dml": ooxml.DML_WALKER, "slide": ooxml.SLIDE_WALKER,
           "notes": ooxml.NOTES_WALKER, "master": ooxml.MASTER_WALKER}
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
V_NS = "urn:schemas-microsoft-com:vml"


def office_files() -> list[Path]:
    out: list[Path] = []
    for sub in ("corpus", "hostile"):
        d = SHARED / sub
        if d.is_dir():
            out += sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in OFFICE_EXT)
    return out


def xml_parts(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return
    for info in zf.infolist():
        if info.filename.endswith((".xml", ".rels")) and info.file_size < 32 << 20 and not info.flag_bits & 1:
            try:
                yield info.filename, zf.read(info)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
                continue


def assert_same_paragraphs(xml: bytes, where: str) -> int:
    root, _ = parse_xml(xml)
    if root is None:
        return 0
    for name, walker in WALKERS.items():
        for role in ("body", "note"):
            assert walker.paragraphs(root, role) == ref.paragraphs(walker, root, role), f"{where} ({name})"
    return 1


def _with_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ooxml.Walker, "paragraphs", lambda self, root, role: ref.paragraphs(self, root, role))
    monkeypatch.setattr(ooxml, "_emit_paras", ref.emit_paras)
    monkeypatch.setattr(ooxml, "_excel", ref._excel)


def assert_same_extraction(data: bytes, monkeypatch: pytest.MonkeyPatch, scanner: Scanner) -> None:
    fast_items = list(OoxmlExtractor().extract(data, ctx()))
    fast_findings = scanner.scan_bytes(data)
    with monkeypatch.context() as m:
        _with_reference(m)
        ref_items = list(OoxmlExtractor().extract(data, ctx()))
        ref_findings = scanner.scan_bytes(data)
    assert fast_items == ref_items
    assert fast_findings == ref_findings


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(ScanConfig())


# ------------------------------------------------------------------ parts built for the walk

def _w(inner: str) -> bytes:
    return (f'<w:document xmlns:w="{W_NS}" xmlns:a="{A_NS}" xmlns:mc="{MC_NS}" xmlns:v="{V_NS}" '
            f'xmlns:x="urn:x"><w:body>{inner}</w:body></w:document>').encode()


KITCHEN = [
    # runs, proofing marks, bookmarks, field codes, deleted and moved-away text, ruby
    p("机", "密★5年") + '<w:p><w:proofErr/><w:r><w:t>秘</w:t></w:r><w:bookmarkStart w:id="1"/><w:r><w:t>密</w:t>'
    '</w:r><w:r><w:instrText>MERGEFIELD 绝密</w:instrText></w:r><w:del><w:r><w:delText>绝密</w:delText></w:r></w:del>'
    '<w:moveFrom><w:r><w:t>机密</w:t></w:r></w:moveFrom><w:r><w:ruby><w:rt><w:r><w:t>jī</w:t></w:r></w:rt>'
    '<w:rubyBase><w:r><w:t>机</w:t></w:r></w:rubyBase></w:ruby></w:r></w:p>',
    # tabs, breaks, dashes, symbols (Wingdings star, Wingdings 2 tick, Symbol star, bad codes)
    '<w:p><w:r><w:t>密级</w:t><w:tab/><w:t>机密</w:t><w:br/><w:t>第二行</w:t><w:noBreakHyphen/><w:cr/>'
    '<w:sym w:font="Wingdings" w:char="F0AB"/><w:sym w:font="Wingdings 2" w:char="F052"/>'
    '<w:sym w:font="Symbol" w:char="F02A"/><w:sym w:char="zz"/><w:sym/><w:sym x:char="2605" w:char="0041"/>'
    '<w:ptab/></w:r></w:p>',
    # page breaks: with text before, without, layout breaks, page-break-before (true/0/off/absent)
    '<w:p><w:r><w:lastRenderedPageBreak/><w:t>一</w:t><w:br w:type="page"/><w:t>二</w:t></w:r></w:p>'
    '<w:p><w:r><w:br w:type="page"/><w:t>三</w:t></w:r></w:p>'
    '<w:p><w:pPr><w:pageBreakBefore/></w:pPr><w:r><w:t>四</w:t></w:r></w:p>'
    '<w:p><w:pPr><w:pageBreakBefore w:val="0"/></w:pPr><w:r><w:t>五</w:t></w:r></w:p>'
    '<w:p><w:pPr><w:pageBreakBefore w:val="off"/><w:sectPr/></w:pPr><w:r><w:t>六</w:t></w:r></w:p>'
    '<w:p><w:pPr><w:pageBreakBefore val="false"/></w:pPr><w:r><w:br x:type="page"/><w:t>七</w:t></w:r></w:p>'
    '<w:p><w:r><w:t xml:space="preserve">   </w:t><w:br w:type="page"/></w:r></w:p>',
    # tables (nested), text boxes VML and DrawingML under AlternateContent, WordArt watermark
    '<w:tbl><w:tblPr/><w:tr><w:tc><w:tcPr/>' + p("密级") + '<w:tbl><w:tr><w:tc>' + p("机密") +
    '</w:tc></w:tr></w:tbl></w:tc><w:tc>' + p("秘密★1年") + '</w:tc></w:tr></w:tbl>',
    '<w:p><w:r><w:t>前</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><a:graphic>'
    '<w:txbxContent>' + p("绝密★长期") + '</w:txbxContent></a:graphic></w:drawing></mc:Choice><mc:Fallback><w:pict>'
    '<v:textbox><w:txbxContent>' + p("绝密★长期（VML）") + '</w:txbxContent></v:textbox></w:pict></mc:Fallback>'
    '</mc:AlternateContent></w:r><w:r><w:t>后</w:t></w:r></w:p>',
    '<w:p><w:r><mc:AlternateContent><mc:Fallback><w:t>只有后备</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>',
    '<w:p><w:r><w:pict><v:shape><v:textpath string="机密"/></v:shape><v:textpath string=""/></w:pict></w:r></w:p>',
    # hostile shapes: text with children, nested paragraphs directly, text outside paragraphs,
    # text under skipped properties, a paragraph inside a run's properties, unknown wrappers
    '<w:p><w:r><w:t>外<w:t>内</w:t>尾</w:t></w:r><w:p><w:r><w:t>嵌套</w:t></w:r></w:p><w:r><w:t>续</w:t></w:r></w:p>'
    '<w:r><w:t>段外文字</w:t><w:br w:type="page"/></w:r><w:pPr><w:sectPr/></w:pPr>'
    '<w:p><w:r><w:rPr><w:p><w:r><w:t>藏</w:t></w:r></w:p></w:rPr><w:t>显</w:t></w:r></w:p>'
    '<w:sdt><w:sdtPr><w:t>x</w:t></w:sdtPr><w:sdtContent><x:wrap><w:p><w:hyperlink><w:r><w:t>链接</w:t>'
    '</w:r></w:hyperlink><w:smartTag><w:r><w:t>标记</w:t></w:r></w:smartTag></w:p></x:wrap></w:sdtContent></w:sdt>'
    '<w:p><w:r><w:t/><w:t></w:t></w:r></w:p><w:p/>',
    # DrawingML paragraphs and cells inside Word
    '<w:p><w:r><w:drawing><a:graphic><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:rPr/><a:t>甲</a:t></a:r><a:br/>'
    '<a:r><a:t>乙</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphic></w:drawing></w:r></w:p>',
]


@pytest.mark.parametrize("inner", KITCHEN + ["".join(KITCHEN)])
def test_every_construct_walks_as_before(inner: str) -> None:
    assert assert_same_paragraphs(_w(inner), inner[:40])


def test_entity_reference_left_unexpanded_walks_as_before() -> None:
    xml = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "机密">]>'.encode()
           + _w(p("a&e;b") + "<w:p><w:r>&e;<w:t>c</w:t></w:r></w:p>"))
    root, err = parse_xml(xml)
    assert err is not None and root is not None
    assert assert_same_paragraphs(xml, "entities")


def test_slides_with_placeholders_tables_and_free_shapes_walk_as_before() -> None:
    def sp(text: str, ph: str | None) -> str:
        nv = f'<p:nvSpPr><p:nvPr><p:ph type="{ph}"/></p:nvPr></p:nvSpPr>' if ph is not None else ""
        return f'<p:sp>{nv}<p:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>'
    shapes = "".join(sp(f"文字{t}", t) for t in ("title", "ctrTitle", "ftr", "hdr", "sldNum", "dt", "body", "obj", ""))
    shapes += sp("自由形状", None) + '<p:sp><p:nvSpPr><p:nvPr><p:ph/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r>' \
        '<a:t>无类型占位符</a:t></a:r></a:p></p:txBody></p:sp>'
    shapes += '<p:graphicFrame><a:graphic><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>单元格</a:t></a:r></a:p>' \
        '</a:txBody></a:tc></a:tr></a:tbl></a:graphic></p:graphicFrame>'
    shapes += '<p:grpSp>' + sp("组内", None) + '</p:grpSp>'
    xml = (f'<p:sld xmlns:p="{P_NS}" xmlns:a="{A_NS}"><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld>'
           f'<p:timing><a:p><a:r><a:t>不读</a:t></a:r></a:p></p:timing></p:sld>').encode()
    assert assert_same_paragraphs(xml, "slide")


# ------------------------------------------------------------------ whole documents

def _fixture_documents() -> list[bytes]:
    body = "".join(KITCHEN)
    return [
        docx(body, parts={"word/header1.xml": f'<w:hdr xmlns:w="{W_NS}">{p("机密★10年")}</w:hdr>'}),
        make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": _w(body).decode()}),
        xlsx('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>机密</t></is></c></row>',
             shared=["秘密★3年"]),
        xlsx('<row r="1"><c r="A1"><v>12</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>-1</v></c>'
             '<c r="D1" t="s"><v>x</v></c><c r="E1" t="s"><v>9</v></c><c t="str"><v> 机密★2年 </v><v>后值</v></c>'
             '<c r="F1" t="b"><v>1</v></c><c r="G1" t="inlineStr"><is><r><t>秘</t></r><rPh><t>mi</t></rPh>'
             '<r><t>密</t></r></is></c><c r="H1" t="s"><v> </v></c></row>'
             # hostile nesting: a cell in a cell, a header in a cell, a cell in a header
             '<row r="2"><c r="A2" t="str"><v>外</v><c r="B2" t="str"><v>内</v></c></c>'
             '<c r="C2" t="str"><oddHeader>&amp;C机密</oddHeader><v>格</v></c></row>',
             shared=["  ", "秘密★3年", "绝密"],
             header_footer='<headerFooter><oddHeader>&amp;L左&amp;C机密★1年&amp;R&amp;P</oddHeader>'
                           '<evenFooter>&amp;&amp;内部<c t="str"><v>页脚里的格</v></c></evenFooter></headerFooter>'),
        pptx('<p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>机密★1年'
             '</a:t></a:r></a:p></p:txBody></p:sp>'),
    ]


@pytest.mark.parametrize("n", range(5))
def test_fixture_documents_extract_and_classify_as_before(n: int, monkeypatch: pytest.MonkeyPatch,
                                                          scanner: Scanner) -> None:
    assert_same_extraction(_fixture_documents()[n], monkeypatch, scanner)


def test_generated_office_documents_extract_and_classify_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   scanner: Scanner) -> None:
    docx_lib = pytest.importorskip("docx")
    openpyxl = pytest.importorskip("openpyxl")
    pptx_lib = pytest.importorskip("pptx")
    lines = ["000123", "机密★10年", "特急", "东陵区人民政府办公室文件", "关于加强保密工作的通知",
             "国家秘密的密级分为绝密、机密、秘密三级。", "对标注“机密★5年”的文件，不得在非涉密计算机上处理。"] * 3
    d = docx_lib.Document()
    for i, ln in enumerate(lines):
        d.add_paragraph(ln)
        if i == 8:
            d.add_page_break()
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(1, 1).text = "密级", "秘密★1年"
    d.sections[0].header.paragraphs[0].text = "内部资料"
    d.save(str(tmp_path / "a.docx"))
    wb = openpyxl.Workbook()
    for r, ln in enumerate(lines, 1):
        wb.active.cell(row=r, column=1, value=ln)
    wb.save(str(tmp_path / "a.xlsx"))
    prs = pptx_lib.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = lines[1]
    slide.placeholders[1].text_frame.text = "\n".join(lines[2:])
    slide.notes_slide.notes_text_frame.text = lines[5]
    prs.save(str(tmp_path / "a.pptx"))
    for f in sorted(tmp_path.iterdir()):
        data = f.read_bytes()
        assert_same_extraction(data, monkeypatch, scanner)
        for name, xml in xml_parts(data):
            assert_same_paragraphs(xml, f"{f.name}!{name}")
    findings, _, _ = scanner.scan_bytes((tmp_path / "a.docx").read_bytes())
    assert any(f.level is not None and f.text == "机密★10年" for f in findings)


@pytest.mark.corpus
def test_corpus_and_hostile_office_files_walk_extract_and_classify_as_before(monkeypatch: pytest.MonkeyPatch,
                                                                             scanner: Scanner) -> None:
    files = office_files()
    if not files:
        pytest.skip(f"no office files under {SHARED} (clone without ../shared)")
    parts = 0
    for f in files:
        data = f.read_bytes()
        assert_same_extraction(data, monkeypatch, scanner)
        for name, xml in xml_parts(data):
            parts += assert_same_paragraphs(xml, f"{f.name}!{name}")
    assert parts > 100  # the comparison really read the corpus's parts


def test_reference_differs_when_the_walk_loses_text(monkeypatch: pytest.MonkeyPatch, scanner: Scanner) -> None:
    # The comparison can fail: a walk that drops the text of table cells is caught.
    data = _fixture_documents()[0]
    real = ooxml.Walker.paragraphs

    def lossy(self: ooxml.Walker, root: etree._Element, role: str) -> list[ooxml.Para]:
        return [para for para in real(self, root, role) if para[1] != "cell"]
    monkeypatch.setattr(ooxml.Walker, "paragraphs", lossy)
    with pytest.raises(AssertionError):
        assert_same_extraction(data, monkeypatch, scanner)


def _count_zip_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an entry each time a `zipfile.ZipFile` is opened (a central directory read)."""
    reads: list[int] = []
    real = zipfile.ZipFile

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: object, **k: object) -> None:
            reads.append(1)
            super().__init__(*a, **k)
    monkeypatch.setattr(zipfile, "ZipFile", Counting)
    return reads


def test_zip_sniffers_share_one_read_of_the_central_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.extractors import registry

    data = _fixture_documents()[0]
    reads = _count_zip_reads(monkeypatch)
    # libmagic's generic zip type: the ODF, OFD and OOXML sniffers all list the names.
    assert registry.pick(data, "application/zip").name == "ooxml"
    assert len(reads) == 1
    assert getattr(ooxml._tls, "sniff", None) is None  # the file's bytes are not kept after the pick
    reads.clear()
    assert ooxml.zip_names(data) is not None and ooxml.zip_names(data) is not None
    assert len(reads) == 2  # outside a pick nothing is remembered


# ------------------------------------------------------------------ segments built in one step

def test_make_segment_builds_the_constructors_segment() -> None:
    import dataclasses
    import pickle

    from scanner.model import Segment, make_segment

    # `make_segment` fills these fields and no others: a field added to Segment must be added there.
    assert [f.name for f in dataclasses.fields(Segment)] == ["text", "member", "role", "standalone", "index", "key"]
    for args in [("机密★10年", None, "body", True, 0), ("a", "word/header1.xml", "header", False, 3, "密级"),
                 ("", "x!y", "cell", True, 7, None)]:
        fast, slow = make_segment(*args), Segment(*args)  # type: ignore[arg-type]
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert vars(fast) == vars(slow)
        assert pickle.loads(pickle.dumps(fast)) == slow
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.text = "changed"  # type: ignore[misc]


# ------------------------------------------------------------------ worksheets freed lazily

def _random_sheet(seed: int) -> tuple[str, int, int]:
    """Rows of every cell type, long rows and many rows (past `_FREE_EVERY`, where the lazy
    freeing of cells and rows catches up), with hostile nestings (a cell in a cell, a header in
    a cell, a cell in a header, a row in a cell, a cell straight in sheetData) here and there.
    Returns the sheet data, its number of rows and the most cells in one row."""
    import random

    rng = random.Random(seed)
    words = ["普通文字", "会议纪要", " ", "", "第三条", "秘密", "机密★10年"]

    def cell(r: int, c: int) -> str:
        kind = rng.choice(["s", "s", "str", "inlineStr", "n", "b", "inlineStr"])
        ref = f' r="R{r}C{c}"' if rng.random() < 0.9 else ""
        if kind == "s":
            return f'<c{ref} t="s"><v>{rng.randrange(-1, 6)}</v></c>'
        if kind == "str":
            return f'<c{ref} t="str"><f>A1</f><v>{rng.choice(words)}</v></c>'
        if kind == "inlineStr":
            runs = "".join(f"<r><t>{rng.choice(words)}</t></r>" for _ in range(rng.randrange(3)))
            return f'<c{ref} t="inlineStr"><is>{runs or "<t>" + rng.choice(words) + "</t>"}</is></c>'
        return f'<c{ref} t="{kind}"><v>{rng.randrange(100)}</v></c>'

    def hostile(r: int, c: int) -> str:
        return rng.choice([
            f'<c r="H{r}" t="str"><v>外{r}</v>{cell(r, c)}</c>',
            f'<c r="J{r}" t="str"><oddHeader>&amp;C机密{r}</oddHeader><v>格{r}</v></c>',
            f'<c r="K{r}" t="str"><v>前{r}</v><row r="{r}">{cell(r, c)}{cell(r, c + 1)}</row><v>后{r}</v></c>',
            f'<c r="L{r}" t="inlineStr"><is><t>前{r}</t></is><row r="{r}">{cell(r, c)}</row></c>',
        ])

    rows, longest = [], 0
    for r in range(1, rng.randrange(280, 400)):
        n = rng.choice([0, 1, 2, 4]) if r not in (5, 150) else rng.randrange(260, 400)
        cells = [hostile(r, c) if rng.random() < 0.02 else cell(r, c) for c in range(n)]
        rows.append(f'<row r="{r}">{"".join(cells)}</row>')
        longest = max(longest, n)
        if rng.random() < 0.005:
            rows.append(cell(r, 0))
    return "".join(rows), len(rows), longest


@pytest.mark.parametrize("seed", range(3))
def test_long_and_many_rows_with_hostile_nesting_extract_as_before(seed: int, monkeypatch: pytest.MonkeyPatch,
                                                                   scanner: Scanner) -> None:
    sheet, rows, longest = _random_sheet(seed)
    assert rows > ooxml._FREE_EVERY and longest > ooxml._FREE_EVERY  # both lazy frees catch up
    assert "<v>外" in sheet or "<v>前" in sheet  # some hostile nesting
    data = xlsx(sheet, shared=["秘密★3年", " ", "机密", "甲", "绝密★长期"],
                header_footer='<headerFooter><oddHeader>&amp;L左&amp;C机密★1年<c t="str"><v>页眉里的格</v></c>'
                              '</oddHeader></headerFooter>')
    items = list(OoxmlExtractor().extract(data, ctx()))
    assert sum(1 for it in items if getattr(it, "role", None) == "cell") > 200  # the sheet was really read
    assert_same_extraction(data, monkeypatch, scanner)


def test_the_picks_listing_is_reused_by_the_extraction_of_the_same_bytes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.extractors import registry

    data = _fixture_documents()[0]
    fresh = ooxml.SafeZip.open(data, ctx())
    reads = _count_zip_reads(monkeypatch)
    assert registry.pick(data, "application/zip").name == "ooxml"
    z = ooxml.SafeZip.open(data, ctx())
    assert len(reads) == 1  # the pick's read of the central directory, and no second one
    assert isinstance(z, ooxml.SafeZip) and isinstance(fresh, ooxml.SafeZip)
    assert list(z.infos) == list(fresh.infos)
    assert [(i.header_offset, i.compress_size, i.file_size, i.flag_bits) for i in z.infos.values()] == \
        [(i.header_offset, i.compress_size, i.file_size, i.flag_bits) for i in fresh.infos.values()]
    assert list(OoxmlExtractor().extract(data, ctx())) == list(OoxmlExtractor().extract(bytes(data), ctx()))
    # Once only, and for equal bytes only: the same length with another central directory
    # (a renamed member) is listed afresh.
    assert registry.pick(data, "application/zip").name == "ooxml"
    other = data.replace(b"word/header1.xml", b"word/header9.xml")
    assert len(other) == len(data) and other != data
    reads.clear()
    z2 = ooxml.SafeZip.open(other, ctx())
    assert len(reads) == 1 and isinstance(z2, ooxml.SafeZip)
    assert "word/header9.xml" in z2.infos and "word/header1.xml" not in z2.infos
    reads.clear()
    assert isinstance(ooxml.SafeZip.open(data, ctx()), ooxml.SafeZip)
    assert len(reads) == 1  # the kept listing was spent
