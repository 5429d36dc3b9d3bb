"""Settings read from procrun.yaml, as plain frozen data (the parser is procrun.config).

A value left out is None, so the caller can apply the precedence flags >
procrun.yaml > .env/environment > defaults. Kept apart from the parser so a
session without procrun.yaml never imports YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeConfig:
    restart: str | None = None
    chaos: bool | None = None  # False: opt out of chaos
    watch: tuple[str, ...] | None = None  # globs whose change restarts this type
    ready: str | None = None  # "port" or "spawn"
    stop_signal: int | None = None
    grace: float | None = None
    line: int = 0


@dataclass(frozen=True)
class FileConfig:
    path: str = "procrun.yaml"
    procfile: str | None = None
    env: tuple[str, ...] | None = None
    formation: str | None = None
    port: int | None = None
    timeout: float | None = None
    restart: str | None = None
    chaos: bool | None = None
    chaos_interval: float | None = None
    chaos_actions: tuple[str, ...] | None = None
    chaos_types: tuple[str, ...] | None = None
    chaos_min_uptime: float | None = None
    chaos_seed: int | None = None
    fresh: bool | None = None
    fresh_ignore: tuple[str, ...] = ()
    fresh_link: tuple[str, ...] | None = None
    keep_dirs: bool | None = None
    router: bool | None = None
    router_host: str | None = None
    router_mode: str | None = None
    router_timeout: float | None = None
    watch: bool | None = None
    watch_paths: tuple[str, ...] | None = None
    watch_ignore: tuple[str, ...] = ()
    watch_debounce: float | None = None
    max_instances: int | None = None
    types: Mapping[str, TypeConfig] = field(default_factory=dict)
