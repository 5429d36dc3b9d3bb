"""procrun.yaml: text in, settings out, every error at file:line:column. Pure.

The keys, their types and ranges come from ``procrun.project.settings.SETTINGS``;
this module only walks the YAML nodes (so errors know their position) and knows
the shapes a section may take: ``chaos: true``, ``watch: [src]``, or a mapping.
"""

from __future__ import annotations

from typing import Any

import yaml

from procrun.errors import ConfigError
from procrun.project.settings import BY_YAML, LIST, MAP, ONE, POLICIES, SECTIONS, TYPE_KEYS, Setting, TypeSetting, TypeSettings

MAX_DEPTH = 32
_OPEN = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.BlockMappingStartToken)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)
# the list a section's shorthand `section: [a, b]` sets, besides enabling it
SHORTHAND_LIST = {"chaos": "types", "fresh": "ignore", "watch": "paths"}


class _Reader:
    """Checks one YAML node tree, raising at the node's position."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, problem, fix, node.start_mark.column + 1)

    def mapping(self, node: yaml.Node, what: str, known: Any = None) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping", "write key: value pairs under it")
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.fail(key, f"a key in {what} is not a plain name", "use a plain name as key")
            if known is not None and key.value not in known:
                raise self.fail(key, f"unknown key {key.value!r} in {what}", f"known keys: {', '.join(known)}")
            if key.value in out:
                raise self.fail(key, f"key {key.value!r} appears twice in {what}", "keep one of them")
            out[key.value] = value
        return out

    def value(self, node: yaml.Node, key: str) -> Any:
        """The plain value of a node: a scalar, a list of scalars, or (formation) a mapping."""
        if isinstance(node, yaml.SequenceNode):
            return [self.scalar(item, key) for item in node.value]
        declared = BY_YAML.get(key)
        shape = declared.shape if declared is not None else ONE
        if isinstance(node, yaml.MappingNode) and shape == MAP:
            return {name: self.scalar(v, f"{key}.{name}") for name, v in self.mapping(node, key).items()}
        if isinstance(node, yaml.MappingNode):
            if shape == LIST:
                raise self.fail(node, f"{key} must be a list of strings", f"write {key}: {declared.example}")
            raise self.fail(node, f"{key} must be a single value", "write one value, not a mapping")
        return self.scalar(node, key)

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{key} must be a single value", "write one value, not a list or mapping")
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            return yaml.safe_load(yaml.serialize(node))
        except yaml.YAMLError:
            raise self.fail(node, f"{key} has a tag procrun does not read ({node.tag})",
                            "remove the tag and write a plain value") from None

    def plain(self, node: yaml.Node, key: str) -> Any:
        """A node as plain data: scalars, lists and mappings of them (keys checked once)."""
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item, key) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            return {k: self.plain(v, f"{key}.{k}") for k, v in self.mapping(node, key).items()}
        return self.scalar(node, key)

    def setting(self, node: yaml.Node, key: str) -> Any:
        """A declared setting: its type and range are the flag's."""
        declared = BY_YAML[key]
        if isinstance(node, yaml.SequenceNode) and declared.shape != LIST:
            raise self.fail(node, f"{key} must be a single value", "write one value, not a list or mapping")
        for item, value in self._items(node, declared):  # an error points at the item that has it
            try:
                declared.parse(value)
            except ValueError as exc:
                raise self.fail(item, f"{key} {exc}", f"write {key}: {declared.example}") from None
        try:
            return declared.parse(self.value(node, key))
        except ValueError as exc:
            raise self.fail(node, f"{key} {exc}", f"write {key}: {declared.example}") from None

    def _items(self, node: yaml.Node, declared: Setting) -> list[tuple[yaml.Node, Any]]:
        key = declared.yaml or declared.name
        if isinstance(node, yaml.SequenceNode):
            return [(item, [self.scalar(item, key)]) for item in node.value]
        if isinstance(node, yaml.MappingNode) and declared.shape == MAP:
            return [(v, {k.value: self.scalar(v, f"{key}.{k.value}")}) for k, v in node.value]
        return []


def parse(text: str, path: str = "procrun.yaml") -> tuple[dict[str, Any], dict[str, TypeSettings]]:
    """(settings by name, per-type settings)."""
    r = _Reader(path)
    try:
        _check_depth(text, path)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(path, line, f"not valid YAML ({getattr(exc, 'problem', None) or exc})",
                          "check the indentation and quoting", column) from None
    if root is None:
        return {}, {}
    values: dict[str, Any] = {}
    types: dict[str, TypeSettings] = {}
    top = [k for k in BY_YAML if "." not in k] + list(SECTIONS) + ["types"]
    for key, node in r.mapping(root, path, top).items():
        if key == "types":
            types = _types(r, node)
        elif key in SECTIONS:
            values.update(_section(r, key, node))
        else:
            values[BY_YAML[key].name] = r.setting(node, key)
    return values, types


def _section(r: _Reader, section: str, node: yaml.Node) -> dict[str, Any]:
    """``chaos: {interval: 5}``, or the shorthands ``chaos: true`` and ``chaos: [web]``."""
    enabled = BY_YAML[f"{section}.enabled"]
    if isinstance(node, yaml.MappingNode):
        keys = [k.split(".", 1)[1] for k in BY_YAML if k.startswith(section + ".")]
        return {BY_YAML[f"{section}.{k}"].name: r.setting(v, f"{section}.{k}")
                for k, v in r.mapping(node, section, keys).items()}
    if isinstance(node, yaml.SequenceNode) and section in SHORTHAND_LIST:
        listed = BY_YAML[f"{section}.{SHORTHAND_LIST[section]}"]
        return {enabled.name: True, listed.name: r.setting(node, f"{section}.{SHORTHAND_LIST[section]}")}
    value = r.scalar(node, section)
    if not isinstance(value, bool):
        raise r.fail(node, f"{section} must be true or false", f"write {section}: true")
    return {enabled.name: value}


def _check_depth(text: str, path: str) -> None:
    """Refuse deep nesting before composing it (the composer recurses once per level)."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                mark = token.start_mark
                raise ConfigError(path, mark.line + 1, f"nested more than {MAX_DEPTH} levels deep",
                                  "procrun.yaml needs at most a few levels", mark.column + 1)
        elif isinstance(token, _CLOSE):
            depth -= 1


def _types(r: _Reader, node: yaml.Node) -> dict[str, TypeSettings]:
    """``types.NAME``: each key read as ``TYPE_SETTINGS`` declares it, errors at the value (or the
    item, or the probe's key) that has them."""
    out = {}
    for name, body in r.mapping(node, "types").items():
        empty = isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null")
        entries = {} if empty else r.mapping(body, f"types.{name}", TYPE_KEYS)
        settings: dict[str, Any] = {}
        for key, value in entries.items():
            settings[key] = _type_value(r, key, value)
        if "after" in entries:
            settings["after"], settings["after_conditions"] = settings["after"]
            settings["after_at"] = _places(entries["after"])
        places = {k: (v.start_mark.line + 1, v.start_mark.column + 1) for k, v in entries.items()}
        out[name] = TypeSettings(**settings, line=body.start_mark.line + 1, places=places)
    _no_cycle(r.path, out)
    return out


def _type_value(r: _Reader, key: str, node: yaml.Node) -> Any:
    declared = TYPE_KEYS[key]
    value = r.plain(node, key)
    try:
        return declared.parse(value)
    except ValueError as exc:
        at = _sub(node, getattr(exc, "at", None)) if getattr(exc, "at", None) else _culprit(r, declared, node)
        raise r.fail(at, f"{key} {exc}", f"write {key}: {declared.example}") from None


def _culprit(r: _Reader, declared: TypeSetting, node: yaml.Node) -> yaml.Node:
    """The item of a list, or the value of a mapping, that the rule refuses on its own."""
    if isinstance(node, yaml.SequenceNode):
        parts = [(item, [r.plain(item, declared.key)]) for item in node.value]
    elif isinstance(node, yaml.MappingNode):
        parts = [(v, {k.value: r.plain(v, declared.key)}) for k, v in node.value]
    else:
        return node
    for item, alone in parts:
        try:
            declared.parse(alone)
        except ValueError:
            return item
    return node


def _sub(node: yaml.Node, key: str | None) -> yaml.Node:
    """The node of ``key`` inside a mapping node (where a probe's mistake is), else the node."""
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return node


def _places(node: yaml.Node) -> tuple[tuple[int, int], ...]:
    """Where each name of ``after`` is written: list items, mapping keys, or the one scalar."""
    items = [k for k, _ in node.value] if isinstance(node, yaml.MappingNode) else \
        node.value if isinstance(node, yaml.SequenceNode) else [node]
    return tuple((item.start_mark.line + 1, item.start_mark.column + 1) for item in items)


def _no_cycle(path: str, types: dict[str, TypeSettings]) -> None:
    """Start order must be a DAG: a cycle is reported at the name that closes it."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in done or name not in types:
            return
        for dep, (line, column) in zip(types[name].after, types[name].after_at):
            if dep in trail or dep == name:
                cycle = " -> ".join(trail[trail.index(dep):] + [name, dep]) if dep in trail else f"{name} -> {name}"
                raise ConfigError(path, line, f"types.{name}.after: start order has a cycle ({cycle})",
                                  "remove one of these names", column)
            visit(dep, trail + [name])
        done.add(name)

    for name in types:
        visit(name, [])


__all__ = ["parse", "POLICIES"]
