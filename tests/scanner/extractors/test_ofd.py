"""OFD extractor: TextCode pieces back into lines per page, metadata, templates, hostile zips."""
from __future__ import annotations

import pytest
from _docs_fixtures import (
    CORPUS,
    OFD_NS,
    ctx,
    errors,
    make_zip,
    ofd,
    run,
    segments,
    text_object,
    texts,
)

from scanner.extractors.base import Limits
from scanner.extractors.ofd import OfdExtractor, _deltas
from scanner.model import ErrorCode, Member

EX = OfdExtractor()


def test_lines_top_to_bottom_per_page() -> None:
    page1 = text_object(20, 34, "东陵区人民政府办公室文件", oid=2) + text_object(20, 27, "机密★长期", oid=1)
    page2 = text_object(20, 20, "第二页", oid=3)
    segs = segments(run(EX, ofd([page1, page2])))
    body = [(s.member, s.text, s.index, s.standalone) for s in segs if s.role == "body"]
    assert body == [("page 1", "机密★长期", 0, True), ("page 1", "东陵区人民政府办公室文件", 1, True),
                    ("page 2", "第二页", 0, True)]


def test_characters_spread_over_textcodes_and_textobjects_rejoined() -> None:
    # One TextObject with a TextCode per character, and a second object continuing the line.
    codes = "".join(f'<ofd:TextCode X="{i * 4.2}" Y="4.5">{ch}</ofd:TextCode>' for i, ch in enumerate("机密★"))
    obj1 = f'<ofd:TextObject ID="1" Boundary="20 20 170 6" Size="4.2">{codes}</ofd:TextObject>'
    obj2 = text_object(20 + 3 * 4.2, 20, "10年", oid=2)
    below = text_object(20, 27, "正文", oid=3)
    assert texts(run(EX, ofd([obj2 + below + obj1]))) == ["通知", "机密★10年", "正文"]


def test_baseline_tolerance_and_column_gap() -> None:
    # Same line, baseline jitter of 0.3 mm; a far-right piece gets a space before it.
    a = text_object(20, 20, "秘密", oid=1)
    b = text_object(20 + 2 * 4.2, 20.3, "★5年", oid=2)
    c = text_object(160, 20, "000123", oid=3)
    assert texts(run(EX, ofd([a + b + c])))[1:] == ["秘密★5年 000123"]


def test_deltax_g_compression() -> None:
    assert _deltas("g 3 4.2 1 2") == [4.2, 4.2, 4.2, 1.0, 2.0]


def test_custom_data_and_title_are_properties() -> None:
    segs = segments(run(EX, ofd([text_object(20, 20, "正文")], custom={"密级": "秘密"})))
    props = {(s.key, s.text) for s in segs if s.role == "property" and s.standalone}
    assert props == {("Title", "通知"), ("密级", "秘密")}


def test_template_text_merged_into_each_page() -> None:
    data = ofd([text_object(20, 40, "正文一"), text_object(20, 40, "正文二")],
               template=text_object(20, 10, "机密★5年", oid=9))
    segs = [s for s in segments(run(EX, data)) if s.role == "body"]
    assert [(s.member, s.text, s.index) for s in segs] == [
        ("page 1", "机密★5年", 0), ("page 1", "正文一", 1), ("page 2", "机密★5年", 0), ("page 2", "正文二", 1)]


def test_template_referenced_many_times_is_merged_once() -> None:
    """A page naming one template 3,000 times (or 3,000 template IDs with one content part) gets
    its text once: each reference used to add the template's pieces again, so a small page times
    a large template made a text without bound."""
    import io
    import zipfile

    tpl = "".join(text_object(20, 10 + 12 * i, f"模板第{i}行", oid=1000 + i) for i in range(50))
    data = ofd([text_object(20, 700, "正文")], template=tpl)
    src = zipfile.ZipFile(io.BytesIO(data))
    files: dict[str, bytes | str] = {n: src.read(n) for n in src.namelist()}
    doc, page = files["Doc_0/Document.xml"], files["Doc_0/Pages/Page_0/Content.xml"]
    assert isinstance(doc, bytes) and isinstance(page, bytes)
    ids = "".join(f'<ofd:TemplatePage ID="{200 + i}" BaseLoc="Tpls/Tpl_0/Content.xml"/>' for i in range(1500))
    files["Doc_0/Document.xml"] = doc.replace(b"<ofd:TemplatePage ", ids.encode() + b"<ofd:TemplatePage ", 1)
    refs = '<ofd:Template TemplateID="100"/>' * 1500 + "".join(
        f'<ofd:Template TemplateID="{200 + i}"/>' for i in range(1500))
    files["Doc_0/Pages/Page_0/Content.xml"] = page.replace(b'<ofd:Template TemplateID="100"/>', refs.encode(), 1)
    segs = [s.text for s in segments(run(EX, make_zip(files))) if s.role == "body"]
    assert segs == [f"模板第{i}行" for i in range(50)] + ["正文"]


def test_deltax_expanded_only_as_far_as_the_text_needs() -> None:
    # Fuzzing shape: `g 100000 1` repeated in one DeltaX expanded into one list entry per
    # repetition x 100,000 (3,000 repetitions, 800 bytes zipped: 2.4 GB); a TextCode uses one
    # delta per gap between its characters.
    import tracemalloc

    assert _deltas("g 3 4.2 1 2", 4) == [4.2, 4.2, 4.2, 1.0]
    assert _deltas("g 100000 1 " * 200, 2) == [1.0, 1.0]
    assert _deltas("x g 0 2 g 3 2 1e3", 4) == [2.0, 2.0, 2.0, 1000.0]  # junk and empty runs skipped
    assert _deltas("g inf 1 2", 2) == [float("inf"), 1.0]  # no count: was an OverflowError out of the reader
    obj = ('<ofd:TextObject ID="1" Boundary="20 20 170 6" Size="4.2"><ofd:TextCode X="0" Y="4.5" DeltaX="'
           + "g 100000 4.2 " * 200 + '">机密★1年</ofd:TextCode></ofd:TextObject>')
    data = ofd([obj])
    tracemalloc.start()
    try:
        items = run(EX, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "机密★1年" in texts(items)
    assert peak < 16 << 20, peak  # was 160 MB for these 200 repetitions


def test_template_named_many_times_on_a_page_is_drawn_once() -> None:
    # Fuzzing shape: a page naming one template 3,000 times (4 KB zipped) copied its pieces
    # 3,000 times into a list rebuilt at each reference: 22 s of CPU.
    data = ofd([text_object(20, 40, "正文")], template=text_object(20, 10, "机密★5年", oid=9))
    import io
    import zipfile
    zf = zipfile.ZipFile(io.BytesIO(data))
    parts: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
    page = parts["Doc_0/Pages/Page_0/Content.xml"].decode()  # type: ignore[union-attr]
    parts["Doc_0/Pages/Page_0/Content.xml"] = page.replace(
        '<ofd:Template TemplateID="100"/>', '<ofd:Template TemplateID="100"/>' * 50)
    items = run(EX, make_zip(parts))
    assert not errors(items)
    assert [(s.text, s.index) for s in segments(items) if s.role == "body"] == [("机密★5年", 0), ("正文", 1)]


def test_template_reuse_charged_to_the_budget() -> None:
    # A template drawn on every page is read once but counts on every page like the page's own
    # text: 100 pages x a 3 KB template do not fit a 64 KB budget (the pages alone do).
    template = "".join(text_object(20, 10 + 10 * i, f"页眉{i}", oid=100 + i) for i in range(20))
    data = ofd([""] * 100, template=template)
    lim = Limits(max_total_size=64 * 1024)
    items = run(EX, data, ctx(limits=lim))
    assert [e.error for e in errors(items)][:1] == [ErrorCode.BOMB]
    assert any(s.member == "page 1" and s.text == "页眉0" for s in segments(items))
    assert not errors(run(EX, ofd([""] * 10, template=template), ctx(limits=lim)))


def test_ctm_translation_applied() -> None:
    obj = ('<ofd:TextObject ID="1" Boundary="0 0 170 6" CTM="1 0 0 1 20 100" Size="4.2">'
           '<ofd:TextCode X="0" Y="4.5">末行</ofd:TextCode></ofd:TextObject>')
    assert texts(run(EX, ofd([obj + text_object(20, 20, "首行")])))[1:] == ["首行", "末行"]


def test_sniff() -> None:
    data = ofd([text_object(20, 20, "x")])
    assert OfdExtractor.sniff(data, "application/zip")
    assert not OfdExtractor.sniff(make_zip({"a.txt": "x"}), "application/zip")


def test_hostile_entity_bomb_page() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
            f'<ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content><ofd:Layer><ofd:TextObject Boundary="0 0 1 1" Size="4">'
            '<ofd:TextCode X="0" Y="1">&d;</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>')
    data = ofd([text_object(20, 20, "x")])
    import io
    import zipfile
    zf = zipfile.ZipFile(io.BytesIO(data))
    parts = {n: zf.read(n) for n in zf.namelist()}
    parts["Doc_0/Pages/Page_0/Content.xml"] = bomb.encode()
    items = run(EX, make_zip(parts))
    assert all("aaa" not in t for t in texts(items))
    assert errors(items)


def test_corrupt_and_bomb() -> None:
    data = ofd([text_object(20, 20, "机密★1年")])
    assert [e.error for e in errors(run(EX, data[:40]))][:1] == [ErrorCode.CORRUPT]
    big = make_zip({"OFD.xml": b"<a>" + b" " * (3 << 20) + b"</a>"})
    items = run(EX, big, ctx(limits=Limits(max_member_size=1 << 20)))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]


def test_missing_page_reported() -> None:
    data = ofd([text_object(20, 20, "x")])
    import io
    import zipfile
    zf = zipfile.ZipFile(io.BytesIO(data))
    parts = {n: zf.read(n) for n in zf.namelist() if "Page_0" not in n}
    assert [e.error for e in errors(run(EX, make_zip(parts)))] == [ErrorCode.CORRUPT]


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
@pytest.mark.parametrize(("name", "marking", "index"), [
    ("p-ofd-0063.ofd", "机密★长期", 1), ("p-ofd-0064.ofd", "绝密★", 1), ("p-ofd-0065.ofd", "机密★24年", 0)])
def test_corpus(name: str, marking: str, index: int) -> None:
    items = run(EX, (CORPUS / "P-ofd" / name).read_bytes())
    assert not errors(items)
    assert any(s.text == marking and s.index == index and s.member == "page 1" for s in segments(items))


def test_scanned_page_images_become_members() -> None:
    import io
    import zipfile

    page = '<ofd:ImageObject ID="7" Boundary="0 0 210 297" ResourceID="5"/>'
    data = ofd([page, text_object(20, 20, "正文")])
    zf = zipfile.ZipFile(io.BytesIO(data))
    parts: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
    doc = parts["Doc_0/Document.xml"].decode()  # type: ignore[union-attr]
    parts["Doc_0/Document.xml"] = doc.replace("</ofd:CommonData>", "<ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes></ofd:CommonData>")
    parts["Doc_0/DocumentRes.xml"] = (f'<ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:MultiMedias>'
                                      '<ofd:MultiMedia ID="5" Type="Image"><ofd:MediaFile>scan1.png</ofd:MediaFile>'
                                      "</ofd:MultiMedia></ofd:MultiMedias></ofd:Res>")
    parts["Doc_0/Res/scan1.png"] = b"\x89PNG fake"
    items = run(EX, make_zip(parts))
    members = [i for i in items if isinstance(i, Member)]
    assert members == [Member("Doc_0/Res/scan1.png", b"\x89PNG fake")]
    assert texts(items)[-1] == "正文"


def test_attachments_are_members() -> None:
    # An issued OFD often carries the Word original as an attachment (GB/T 33190 Attachments).
    data = ofd([text_object(20, 20, "正文")], attachments={"附件1.docx": b"PK\x03\x04original", "说明.txt": b"x"})
    got = [(m.name, m.data) for m in run(EX, data) if isinstance(m, Member)]
    assert got == [("Doc_0/Attachs/附件1.docx", b"PK\x03\x04original"), ("Doc_0/Attachs/说明.txt", b"x")]


def test_attachments_count_against_the_member_budget() -> None:
    data = ofd([text_object(20, 20, "正文")], attachments={f"a{i}.txt": b"x" for i in range(5)})
    items = run(EX, data, ctx(limits=Limits(max_members=2)))
    assert len([m for m in items if isinstance(m, Member)]) == 2
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]


def _with_annotations(data: bytes, listing: str, parts: dict[str, str]) -> bytes:
    """`data` (an `ofd(...)` package) with an Annotations list `listing` (FileLoc values,
    relative to Doc_0/Annots/) and the annotation parts `parts` added."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    files: dict[str, bytes | str] = {n: src.read(n) for n in src.namelist()}
    doc = files["Doc_0/Document.xml"]
    assert isinstance(doc, bytes)
    files["Doc_0/Document.xml"] = doc.replace(b"</ofd:Document>",
                                              b"<ofd:Annotations>Annots/Annotations.xml</ofd:Annotations></ofd:Document>")
    files["Doc_0/Annots/Annotations.xml"] = (f'<?xml version="1.0"?><ofd:Annotations xmlns:ofd="{OFD_NS}">'
                                             + listing + "</ofd:Annotations>")
    files.update({f"Doc_0/Annots/{k}": v for k, v in parts.items()})
    return make_zip(files)


def test_annotation_part_listed_10000_times_is_read_once() -> None:
    import time

    annot = (f'<?xml version="1.0"?><ofd:PageAnnot xmlns:ofd="{OFD_NS}">'
             + "<ofd:Annot><ofd:Remark>批注</ofd:Remark></ofd:Annot>" * 500 + "</ofd:PageAnnot>")
    listing = "".join('<ofd:Page PageID="1"><ofd:FileLoc>a.xml</ofd:FileLoc></ofd:Page>'
                      '<ofd:Page PageID="1"><ofd:FileLoc>Annotations.xml</ofd:FileLoc></ofd:Page>'
                      for _ in range(5000))
    data = _with_annotations(ofd([text_object(20, 20, "正文")]), listing, {"a.xml": annot})
    t = time.perf_counter()
    items = run(EX, data)
    assert time.perf_counter() - t < 3
    assert not errors(items)
    assert len([s for s in segments(items) if s.role == "note"]) == 500


def test_spent_budget_stops_reading_parts() -> None:
    # Once the file's decompression budget is spent, later parts are refused without inflating
    # them, and the pages stop: one error, not one per remaining page.
    data = ofd([text_object(20, 20, f"第{i}页") for i in range(30)])
    items = run(EX, data, ctx(limits=Limits(max_total_size=2000)))
    bombs = [e for e in errors(items) if e.error is ErrorCode.BOMB]
    assert len(bombs) == 1 and bombs[0].detail.endswith("in total")


# Nesting no producer writes but a hostile file can hold: each level used to read everything below
# it again (quadratic: 200 levels in 2 KB zipped took 17-20 s and up to 560 MB; fuzz regressions
# kept under tests/fuzz/regressions/ofd/). What is nested is now read once, with what holds it.

def test_nested_text_objects_read_once() -> None:
    x = '<ofd:TextCode X="0" Y="4.5">机密★</ofd:TextCode>'
    for i in range(3):
        x = f'<ofd:TextObject ID="{i + 1}" Boundary="20 20 170 6" Size="4.2">{x}</ofd:TextObject>'
    assert texts(run(EX, ofd([x])))[1:] == ["机密★"]


def test_nested_annotations_read_once() -> None:
    x = ""
    for i in range(3):
        x = (f'<ofd:Annot><ofd:Remark>批注{i}</ofd:Remark><ofd:Appearance>'
             f'{text_object(20, 20 + 10 * i, f"水印{i}", oid=50 + i)}</ofd:Appearance>{x}</ofd:Annot>')
    annot = f'<?xml version="1.0"?><ofd:PageAnnot xmlns:ofd="{OFD_NS}">{x}</ofd:PageAnnot>'
    listing = '<ofd:Page PageID="1"><ofd:FileLoc>a.xml</ofd:FileLoc></ofd:Page>'
    items = run(EX, _with_annotations(ofd([text_object(20, 20, "正文")]), listing, {"a.xml": annot}))
    notes = [s.text for s in segments(items) if s.role == "note"]
    assert sorted(notes) == ["批注0", "批注1", "批注2", "水印0", "水印1", "水印2"]


def test_nested_custom_tags_read_once() -> None:
    tags = '<?xml version="1.0"?><gw:公文 xmlns:gw="urn:gongwen"><gw:密级>机密<gw:密级>★1年</gw:密级></gw:密级></gw:公文>'
    props = [(s.key, s.text) for s in segments(run(EX, ofd([text_object(20, 20, "正文")], tags=tags)))
             if s.key == "密级"]
    assert props == [("密级", "机密 ★1年")]


def test_undeclared_prefixes_are_no_exceptions() -> None:
    # etree.QName raised on `xx:Title` (a prefix the part never declares, kept in the tag by the
    # recovering parser): the whole OFD became an error record, its pages unread.
    tags = '<?xml version="1.0"?><gw:公文><gw:密级>机密</gw:密级></gw:公文>'
    data = ofd([text_object(20, 20, "正文")], custom={"密级": "秘密"}, tags=tags)
    import io
    import zipfile
    zf = zipfile.ZipFile(io.BytesIO(data))
    parts: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
    head = parts["OFD.xml"]
    assert isinstance(head, bytes)
    parts["OFD.xml"] = head.replace(b"<ofd:Title>", b"<xx:Title>").replace(b"</ofd:Title>", b"</xx:Title>")
    items = run(EX, make_zip(parts))
    assert "正文" in texts(items)
    assert {(s.key, s.text) for s in segments(items) if s.role == "property"} >= {("Title", "通知"), ("密级", "机密")}
