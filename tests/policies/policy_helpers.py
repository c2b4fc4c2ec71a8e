"""Shared constants and builders for the policies tests (imported by module name)."""
from __future__ import annotations

MINIMAL_RULE = """
  - id: T-1
    title_zh: 测试
    title_en: test
    source: 测试来源
    on: file
    when:
      file.level: {at_least: secret}
    severity: high
    action: block
    rationale_zh: "{file.path} 为{file.level}"
    rationale_en: "{file.path} is {file.level}"
"""


def pack_text(name: str = "t", rules: str = MINIMAL_RULE, extra: str = "") -> str:
    return f"baomi_policy: 1\npack: {name}\n{extra}rules:{rules}"
