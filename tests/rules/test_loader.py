"""YARA prefilter, site rules, keyword lists and the compiled-rules cache."""
from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import SHIPPED_DIR, RuleSet, keyword_rule_source, prefilter_source

MARKINGS = ["绝密★长期", "机密★10年", "秘密★6个月", "機密★25年", "祕密", "絕密"]


def test_shipped_prefilter_is_generated_from_the_level_words() -> None:
    assert (SHIPPED_DIR / "levels.yar").read_text(encoding="utf-8") == prefilter_source()


@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "big5", "utf-16-le", "utf-16-be"])
def test_prefilter_sees_level_words_in_every_encoding(enc: str) -> None:
    rs = RuleSet()
    for m in MARKINGS:
        try:
            data = ("前文\n" + m + "\n后文").encode(enc)
        except UnicodeEncodeError:
            continue
        assert rs.prefilter(data), (m, enc)


def test_prefilter_tolerates_spaces_and_zero_width_inside_the_word() -> None:
    rs = RuleSet()
    assert rs.prefilter("绝 密 ★ 1 年".encode())
    assert rs.prefilter("秘\u3000密★17年".encode("gb18030"))
    assert rs.prefilter("机\u200b密★5年".encode())


def test_prefilter_rejects_clean_text() -> None:
    rs = RuleSet()
    assert not rs.prefilter("关于加强办公室工作的通知，各单位认真落实。".encode())
    assert not rs.prefilter("关于加强办公室工作的通知".encode("utf-16-le"))


@pytest.mark.parametrize("prose", [
    "不得泄露国家机密和秘密的内容，要严格保密。\n", "国家秘密（以下简称涉密信息）的密级分为三级。\n",
    "做好保密工作。\n（以下简称保密）\n", "秘密的；\n", "工作与秘密无关", "Keep the secret key safe.\n",
])
@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "utf-16-le"])
def test_prefilter_lets_running_text_with_level_words_pass_undecoded(prose: str, enc: str) -> None:
    """Secrecy prose is full of level words; only marking-shaped bytes need decoding."""
    assert not RuleSet().prefilter(prose.encode(enc))


@pytest.mark.parametrize("text", [
    "机密★10年", "秘　密\n", "文末\n秘密", "（秘密）本段", "密级：机密", "秘 密 ★ 1 2 年", "机密（10年）",
    "绝密★(30年)", "机密·10年", "机\u200b密★5年", "秘密 \n", "机密 ★ 5年", "x\n内部\n", "内部资料 注意保存",
    "x\nTOP SECRET", "SECRET//NOFORN", "机密  ★10年", "机密\t★10年", "密 级：机密",
    "内部\n正文", "【内部】", "内部资料，注意保存", "| 密级 | 机密 |", "密级\t秘密\t份号", "机密　　第 1 页",
    "机密  000012", "正文\n秘密\u2028正文", "正文\n秘密\x0c正文", "Classification: SECRET", "  SECRET  \n正文",
])
@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "utf-16-le", "utf-16-be"])
def test_prefilter_sees_every_marking_shape(text: str, enc: str) -> None:
    assert RuleSet().prefilter(text.encode(enc)), (text, enc)


def test_keywords_in_every_encoding(tmp_path: Path) -> None:
    kw = tmp_path / "kw.txt"
    kw.write_text("# code names\n天河工程\nPROJECT-ORCHID\n\n", encoding="utf-8")
    rs = RuleSet(keywords_file=kw, cache_dir=tmp_path / "c")
    assert rs.keywords == ["天河工程", "PROJECT-ORCHID"]
    for enc in ("utf-8", "gb18030", "utf-16-le", "utf-16-be"):
        hits = rs.user_matches(("关于天河工程的说明").encode(enc))
        assert [h.text for h in hits] == ["天河工程"], enc
    assert [h.text for h in rs.user_matches(b"ref: project-orchid v2")] == ["PROJECT-ORCHID"]
    assert rs.user_matches("无关内容".encode()) == []


def test_keyword_source_escapes_quotes() -> None:
    src = keyword_rule_source(['say "hi"\\'])
    import yara
    yara.compile(source=src)


def test_site_rules_and_cache(tmp_path: Path) -> None:
    rd = tmp_path / "rules"
    rd.mkdir()
    (rd / "site.yar").write_text('rule code_name { strings: $a = "ORCHID" condition: $a }', encoding="utf-8")
    cache = tmp_path / "cache"
    rs = RuleSet(rules_dir=rd, cache_dir=cache)
    hits = rs.user_matches(b"xx ORCHID yy")
    assert [(h.namespace, h.rule, h.text) for h in hits] == [("rule", "code_name", "ORCHID")]
    cached = sorted(p.name for p in cache.glob("*.yarc"))
    assert cached, "compiled rules are cached on disk"
    # unchanged sources load from the cache; a changed rule gets a new cache entry
    RuleSet(rules_dir=rd, cache_dir=cache)
    assert sorted(p.name for p in cache.glob("*.yarc")) == cached
    (rd / "site.yar").write_text('rule other { strings: $a = "TULIP" condition: $a }', encoding="utf-8")
    rs2 = RuleSet(rules_dir=rd, cache_dir=cache)
    assert rs2.digest != rs.digest
    assert [h.rule for h in rs2.user_matches(b"TULIP")] == ["other"]


def test_bad_rules_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RuleSet(rules_dir=tmp_path)


def test_prefilter_sees_a_banner_after_a_utf8_bom() -> None:
    assert RuleSet().prefilter("\ufeffTOP SECRET//NOFORN\nmemo".encode("utf-8"))


def test_a_failed_cache_write_leaves_no_temp_file_and_the_old_entry(tmp_path: Path) -> None:
    from rules.loader import own_cache_entry, save_cache_entry

    entry = tmp_path / "c" / "x.yarc"
    save_cache_entry(entry, lambda tmp: Path(tmp).write_bytes(b"good"))
    assert entry.read_bytes() == b"good" and own_cache_entry(entry)

    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    save_cache_entry(entry, broken)  # an unwritable cache is not an error
    assert entry.read_bytes() == b"good"
    assert sorted(p.name for p in entry.parent.iterdir()) == ["x.yarc"]
