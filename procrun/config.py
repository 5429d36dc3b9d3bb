"""procrun.yaml: text in, frozen settings out, every error at file:line:column. Pure.

The file holds what flags hold, plus per-type settings. A value left out is
None, so the caller can apply the precedence flags > procrun.yaml >
.env/environment > defaults.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from procrun import ranges
from procrun.chaos import ACTIONS
from procrun.errors import ConfigError
from procrun.machine import POLICIES
from procrun.settings import FileConfig, TypeConfig

__all__ = ["FileConfig", "TypeConfig", "parse"]


class _Reader:
    """Checks one YAML node tree against the schema, raising at the node's position."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, problem, fix, node.start_mark.column + 1)

    def mapping(self, node: yaml.Node, what: str, known: Mapping[str, Any] | None = None) -> dict[str, yaml.Node]:
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

    def string(self, node: yaml.Node, key: str) -> str:
        value = self.scalar(node, key)
        if not isinstance(value, str) or not value:
            raise self.fail(node, f"{key} must be a non-empty string", f"write {key}: some-text")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            raise self.fail(node, f"{key} must be true or false", f"write {key}: true")
        return value

    def number(self, node: yaml.Node, key: str, check: Callable[[float], float] = ranges.seconds) -> float:
        return self.checked(node, key, check, 5)

    def integer(self, node: yaml.Node, key: str, low: int, high: int) -> int:
        value = self.scalar(node, key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(node, f"{key} must be an integer from {low} to {high}", f"write {key}: {low}")
        return value

    def checked(self, node: yaml.Node, key: str, check: Callable[[Any], Any], example: object) -> Any:
        """A value whose range is declared in procrun.ranges, shared with the flags."""
        try:
            return check(self.scalar(node, key))
        except ValueError as exc:
            raise self.fail(node, f"{key} {exc}", f"write {key}: {example}") from None

    def choice(self, node: yaml.Node, key: str, choices: tuple[str, ...]) -> str:
        value = self.scalar(node, key)
        if value not in choices:
            raise self.fail(node, f"{key} must be one of {', '.join(choices)}, not {value!r}", f"write {key}: {choices[0]}")
        return value

    def strings(self, node: yaml.Node, key: str, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of strings, or one string (comma-separated)."""
        if isinstance(node, yaml.ScalarNode):
            items = [(node, part.strip()) for part in str(self.scalar(node, key)).split(",") if part.strip()]
        elif isinstance(node, yaml.SequenceNode):
            items = [(item, self.string(item, key)) for item in node.value]
        else:
            raise self.fail(node, f"{key} must be a list of strings", f"write {key}: [a, b]")
        for item, value in items:
            if choices is not None and value not in choices:
                raise self.fail(item, f"{key}: {value!r} is not one of {', '.join(choices)}", f"use {', '.join(choices)}")
        return tuple(value for _, value in items)


def _signal(reader: _Reader, node: yaml.Node) -> int:
    name = str(reader.scalar(node, "stop_signal")).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise reader.fail(node, f"stop_signal {node.value!r} is not a signal name", "write stop_signal: SIGTERM") from None


def _section(reader: _Reader, node: yaml.Node, key: str, known: Mapping[str, Callable[[yaml.Node], Any]],
             shorthand: Callable[[yaml.Node], dict[str, Any]]) -> dict[str, Any]:
    """A section given as a mapping, or as a shorthand scalar/list."""
    if not isinstance(node, yaml.MappingNode):
        return shorthand(node)
    return {k: known[k](v) for k, v in reader.mapping(node, key, known).items()}


def parse(text: str, path: str = "procrun.yaml") -> FileConfig:
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
        return FileConfig(path)
    values: dict[str, Any] = {"path": path}

    def formation(node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return ",".join(f"{k}={r.integer(v, f'formation.{k}', 0, ranges.MAX_INSTANCES_CEILING)}" for k, v in r.mapping(node, "formation").items())
        return r.string(node, "formation")

    chaos_keys: dict[str, Callable[[yaml.Node], Any]] = {
        "enabled": lambda n: r.boolean(n, "chaos.enabled"),
        "interval": lambda n: r.number(n, "chaos.interval", ranges.interval),
        "actions": lambda n: r.strings(n, "chaos.actions", ACTIONS),
        "types": lambda n: r.strings(n, "chaos.types"),
        "min_uptime": lambda n: r.number(n, "chaos.min_uptime"),
        "seed": lambda n: r.checked(n, "chaos.seed", ranges.seed, 42),
    }
    fresh_keys: dict[str, Callable[[yaml.Node], Any]] = {
        "enabled": lambda n: r.boolean(n, "fresh.enabled"),
        "ignore": lambda n: r.strings(n, "fresh.ignore"),
        "link": lambda n: r.strings(n, "fresh.link"),
        "keep_dirs": lambda n: r.boolean(n, "fresh.keep_dirs"),
    }
    router_keys: dict[str, Callable[[yaml.Node], Any]] = {
        "enabled": lambda n: r.boolean(n, "router.enabled"),
        "host": lambda n: r.string(n, "router.host"),
        "mode": lambda n: r.choice(n, "router.mode", ("http", "tcp")),
        "timeout": lambda n: r.number(n, "router.timeout", ranges.interval),
    }
    watch_keys: dict[str, Callable[[yaml.Node], Any]] = {
        "enabled": lambda n: r.boolean(n, "watch.enabled"),
        "paths": lambda n: r.strings(n, "watch.paths"),
        "ignore": lambda n: r.strings(n, "watch.ignore"),
        "debounce": lambda n: r.number(n, "watch.debounce"),
    }

    def enabled_or_list(key: str, list_key: str) -> Callable[[yaml.Node], dict[str, Any]]:
        def shorthand(node: yaml.Node) -> dict[str, Any]:
            if isinstance(node, yaml.SequenceNode):
                return {"enabled": True, list_key: r.strings(node, key)}
            return {"enabled": r.boolean(node, key)}
        return shorthand

    top: dict[str, Callable[[yaml.Node], None]] = {
        "procfile": lambda n: values.__setitem__("procfile", r.string(n, "procfile")),
        "env": lambda n: values.__setitem__("env", r.strings(n, "env")),
        "formation": lambda n: values.__setitem__("formation", formation(n)),
        "port": lambda n: values.__setitem__("port", r.integer(n, "port", 1, 65535)),
        "timeout": lambda n: values.__setitem__("timeout", r.number(n, "timeout")),
        "restart": lambda n: values.__setitem__("restart", r.choice(n, "restart", POLICIES)),
        "chaos": lambda n: _apply(values, "chaos", _section(r, n, "chaos", chaos_keys, enabled_or_list("chaos", "types"))),
        "fresh": lambda n: _apply(values, "fresh", _section(r, n, "fresh", fresh_keys, enabled_or_list("fresh", "ignore"))),
        "router": lambda n: _apply(values, "router", _section(r, n, "router", router_keys,
                                                              lambda m: {"enabled": r.boolean(m, "router")})),
        "watch": lambda n: _apply(values, "watch", _section(r, n, "watch", watch_keys, enabled_or_list("watch", "paths"))),
        "types": lambda n: values.__setitem__("types", _types(r, n)),
        "max_instances": lambda n: values.__setitem__("max_instances", r.checked(n, "max_instances",
                                                                                 ranges.instances, 2000)),
    }
    for key, node in r.mapping(root, path, top).items():
        top[key](node)
    return FileConfig(**values)


MAX_DEPTH = 32
_OPEN = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.BlockMappingStartToken)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


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


_RENAMES = {("fresh", "keep_dirs"): "keep_dirs", ("fresh", "link"): "fresh_link", ("fresh", "ignore"): "fresh_ignore"}


def _apply(values: dict[str, Any], section: str, data: dict[str, Any]) -> None:
    for key, value in data.items():
        name = _RENAMES.get((section, key)) or (section if key == "enabled" else f"{section}_{key}")
        values[name] = value


def _types(r: _Reader, node: yaml.Node) -> dict[str, TypeConfig]:
    keys: dict[str, Callable[[yaml.Node], Any]] = {
        "restart": lambda n: r.choice(n, "restart", POLICIES),
        "chaos": lambda n: r.boolean(n, "chaos"),
        "watch": lambda n: r.strings(n, "watch"),
        "ready": lambda n: r.choice(n, "ready", ("port", "spawn")),
        "stop_signal": lambda n: _signal(r, n),
        "grace": lambda n: r.number(n, "grace"),
    }
    out = {}
    for name, body in r.mapping(node, "types").items():
        settings = {k: keys[k](v) for k, v in r.mapping(body, f"types.{name}", keys).items()} if not (
            isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null")) else {}
        out[name] = TypeConfig(**settings, line=body.start_mark.line + 1)
    return out
