"""Grammar properties atheris cannot state: the contract of docs/markings.md over generated prose.

- a marking on a line of its own, inserted between any two lines of arbitrary prose, is found;
- zero-width characters inside the marking, or encoding the file as GBK/UTF-16, keep the verdict;
- a mention (a level word in running prose) never becomes a marking by re-encoding."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.engine import Scanner

SCANNER = Scanner()
PROSE = st.lists(st.text(alphabet="的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严", min_size=1, max_size=30), min_size=1, max_size=8)
MARK = "机密★10年"
ZW = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])


def level(text: str, encoding: str = "utf-8") -> str | None:
    findings, _errors, _mime = SCANNER.scan_bytes(text.encode(encoding), "doc.txt")
    markings = [f for f in findings if f.kind.value == "marking"]
    return max((f.level.value for f in markings), default=None) if markings else None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROSE, st.integers(min_value=0, max_value=8))
def test_marking_line_anywhere_in_prose_is_found(lines: list[str], pos: int) -> None:
    pos = min(pos, len(lines))
    body = lines[:pos] + [MARK] + lines[pos:]
    assert level("\n".join(body)) == "secret"


def _zero_width_and_encoding(lines: list[str], zw: str, cut: int, enc: str) -> None:
    mark = MARK[:cut] + zw + MARK[cut:] if zw else MARK
    text = "\n".join([mark, *lines])
    assert level(text, enc) == level("\n".join([MARK, *lines])) == "secret"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROSE, ZW, st.integers(min_value=1, max_value=len(MARK) - 1))
def test_zero_width_keeps_the_verdict(lines: list[str], zw: str, cut: int) -> None:
    _zero_width_and_encoding(lines, zw, cut, "utf-8")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROSE, st.sampled_from(["gbk", "gb18030", "utf-16", "utf-16-be"]))
def test_encoding_keeps_the_verdict(lines: list[str], enc: str) -> None:
    _zero_width_and_encoding(lines, "", 0, enc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROSE, ZW, st.integers(min_value=1, max_value=len(MARK) - 1),
       st.sampled_from(["utf-16", "utf-16-be", "utf-16-le", "gb18030"]))
def test_zero_width_in_other_encodings_keeps_the_verdict(lines: list[str], zw: str, cut: int, enc: str) -> None:
    # Found by the property above run over UTF-16: '机密\u200b★10年' was not found (the
    # prefilter's UTF-16 and GB18030 strings wanted 密 right before the star).
    _zero_width_and_encoding(lines, zw, cut, enc)


def test_zero_width_between_level_and_star_regression() -> None:
    for enc in ("utf-16", "utf-16-be", "gb18030"):
        _zero_width_and_encoding(["一"], "\u200b", 2, enc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROSE, st.sampled_from(["utf-8", "gbk", "utf-16", "utf-16-be", "gb18030"]))
def test_a_mention_never_becomes_a_marking_by_reencoding(lines: list[str], enc: str) -> None:
    prose = "\n".join(f"{ln}本文提到机密文件的管理规定{ln}" for ln in lines)
    assert level(prose, enc) == level(prose, "utf-8")
