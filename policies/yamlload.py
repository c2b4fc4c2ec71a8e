"""Safe YAML loading that remembers where every value stood (file, line, column).

Policy packs, test cases and approval registers are read through `load_located`: plain data only
(the safe schema, no tags, no anchors/aliases, bounded size and depth), duplicate keys refused,
and mappings/sequences returned as `LMap` / `LList` carrying the 1-based line and column of each
key or item so that validation errors can point at them.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml is faster and is robust against fuzzed input
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

from policies.model import Issue
from scanner.i18n import tr

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
_SAFE_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
}


class LMap(dict):  # type: ignore[type-arg]
    """A mapping with `mark` (its own line, column) and `marks[key]` (each key's)."""

    mark: tuple[int | None, int | None] = (None, None)
    marks: dict[Any, tuple[int, int]]


class LList(list):  # type: ignore[type-arg]
    mark: tuple[int | None, int | None] = (None, None)
    marks: dict[Any, tuple[int, int]]


class YamlError(ValueError):
    def __init__(self, issue: Issue):
        super().__init__(str(issue))
        self.issue = issue


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, source: str):
        self.source = source
        self.seen: set[int] = set()
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used

    def fail(self, node: yaml.Node, msg: str) -> YamlError:
        line, col = _pos(node)
        return YamlError(Issue(self.source, line, col, "", msg))

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(node, tr(f"嵌套超过 {MAX_DEPTH} 层", f"nesting deeper than {MAX_DEPTH} levels"))
        if id(node) in self.seen:
            raise self.fail(node, tr("策略文件中不允许使用锚点和别名（&/*）", "anchors and aliases are not allowed in policy files"))
        self.seen.add(id(node))
        if node.tag not in _SAFE_TAGS:
            raise self.fail(node, tr(f"不允许使用标签 {node.tag!r}", f"tag {node.tag!r} is not allowed"))
        if isinstance(node, yaml.MappingNode):
            m = LMap()
            m.mark = _pos(node)
            m.marks = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    raise self.fail(knode, tr("映射的键必须是普通标量", "mapping keys must be plain scalars"))
                if knode.tag not in _SAFE_TAGS:
                    raise self.fail(knode, tr(f"不允许使用标签 {knode.tag!r}", f"tag {knode.tag!r} is not allowed"))
                # keys stay text: `on:`, `yes:` or `1:` are names here, not booleans or numbers
                key = knode.value
                if key in m:
                    raise self.fail(knode, tr(f"键 {key!r} 重复或无效", f"duplicate or invalid key {key!r}"))
                m.marks[key] = _pos(knode)
                m[key] = self.build(vnode, depth + 1)
            return m
        if isinstance(node, yaml.SequenceNode):
            seq = LList()
            seq.mark = _pos(node)
            seq.marks = {}
            for i, item in enumerate(node.value):
                seq.marks[i] = _pos(item)
                seq.append(self.build(item, depth + 1))
            return seq
        if node.tag == "tag:yaml.org,2002:timestamp":
            # keep dates as ISO text: the model compares ISO strings
            value = self.constructor.construct_yaml_timestamp(node)
            if isinstance(value, _dt.datetime):
                return value.isoformat()
            return value.isoformat()
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise self.fail(node, tr(f"无效的值：{exc}", f"bad scalar: {exc}")) from None


def load_located(text: str | bytes, source: str = "<string>") -> Any:
    """Parse one YAML document into located plain data; raise YamlError with a position."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise YamlError(Issue(source, None, None, "", tr(f"文件超过 {MAX_BYTES} 字节", f"file larger than {MAX_BYTES} bytes")))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(Issue(source, None, None, "", tr(f"不是 UTF-8 文本（第 {exc.start} 字节）", f"not UTF-8 text (byte {exc.start})"))) from None
    if len(text) > MAX_BYTES:
        raise YamlError(Issue(source, None, None, "", tr(f"文件超过 {MAX_BYTES} 字节", f"file larger than {MAX_BYTES} bytes")))
    if "\x00" in text:
        raise YamlError(Issue(source, None, None, "", tr("文本中含有 NUL 字符", "NUL character in text")))
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "YAML syntax error"
        raise YamlError(Issue(source, line, col, "", tr(f"YAML 语法错误：{msg}", f"YAML syntax error: {msg}"))) from None
    except yaml.YAMLError as exc:
        raise YamlError(Issue(source, None, None, "", tr(f"YAML 错误：{exc}", f"YAML error: {exc}"))) from None
    except RecursionError:
        raise YamlError(Issue(source, None, None, "", tr("YAML 嵌套过深", "YAML nested too deeply"))) from None
    if len(nodes) > 1:
        line, col = _pos(nodes[1])
        raise YamlError(Issue(source, line, col, "", tr("每个文件只能有一个 YAML 文档", "only one YAML document per file")))
    if not nodes or nodes[0] is None:
        return None
    try:
        return _Builder(source).build(nodes[0])
    except RecursionError:
        raise YamlError(Issue(source, None, None, "", tr("YAML 嵌套过深", "YAML nested too deeply"))) from None


def load_located_file(path: str | Path) -> Any:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlError(Issue(str(p), None, None, "", tr(f"无法读取：{exc.strerror or exc}", f"cannot read: {exc.strerror or exc}"))) from None
    return load_located(data, str(p))
