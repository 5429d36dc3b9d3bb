"""Formation arithmetic and the instance plan. Pure: no I/O.

``plan()`` is the one place that turns Procfile + formation + env + base port
into the list of instances; start, check and export all use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from procrun.errors import UsageError
from procrun.project.ranges import MAX_INSTANCES
from procrun.project.procfile import Procfile

if TYPE_CHECKING:
    from procrun.project.settings import Settings

MAX_PORT = 65535
# The variables that name the instance (web.1) in its environment: start and every exporter use this table.
INSTANCE_NAME_VARS = ("PS", "DYNO", "HONCHO_PROCESS_NAME")
_ITEM = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(-?\d+)\s*$")


def type_of(name: str) -> str:
    """The process type of an instance name: ``web`` for ``web.2``."""
    return name.rsplit(".", 1)[0]


class Instance(NamedTuple):
    """One process to run: ``web.2`` with its command, port and environment."""

    type: str
    index: int
    command: str
    port: int | None
    env: Mapping[str, str] = MappingProxyType({})
    cwd: str = ""  # the folder of the app root it runs in (procrun.yaml types.T.cwd); "": the root

    @property
    def name(self) -> str:
        return f"{self.type}.{self.index}"

    def __repr__(self) -> str:  # not the environment: .env holds secrets
        return f"Instance({self.type!r}, {self.index}, {self.command!r}, {self.port})"


def parse_formation(text: str, source: str = "--formation") -> dict[str, int]:
    """Parse ``web=2,worker=3`` (``all=N`` sets every type) into counts."""
    counts: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        match = _ITEM.match(item)
        if match is None:
            raise UsageError(f"{source}: {item.strip()!r} is not TYPE=COUNT; write it like web=2,worker=1")
        name, count = match.group(1), int(match.group(2))
        if count < 0:
            raise UsageError(f"{source}: count for {name!r} is negative; use 0 or more")
        counts[name] = count
    return counts


def parse_port(text: str | int, source: str = "--port") -> int:
    try:
        port = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: {str(text)!r} is not a port number; use an integer from 1 to {MAX_PORT}") from None
    if not 1 <= port <= MAX_PORT:
        raise UsageError(f"{source}: port {port} is out of range; use an integer from 1 to {MAX_PORT}")
    return port


RELEASE_TYPE = "release"  # Heroku's release phase: runs once, before the formation starts


def select_types(procfile: Procfile, wanted: Iterable[str]) -> tuple[str, ...]:
    """The types to start, in Procfile order; all when none are named. ``release`` is never one
    of them: it runs before them (``Plan.release``)."""
    wanted = list(wanted)
    for name in wanted:
        if procfile.get(name) is None:
            raise UsageError(f"{procfile.path} has no process type {name!r}; it defines {', '.join(procfile.names)}")
        if name == RELEASE_TYPE:
            command = procfile.get(name).command  # type: ignore[union-attr]
            raise UsageError(f"{RELEASE_TYPE} runs once before the other types on every start (--no-release "
                             f"skips it); name the types to start, or run it alone with: procrun run {command}")
    return tuple(n for n in procfile.names if n != RELEASE_TYPE and (not wanted or n in wanted))


def resolve_counts(types: tuple[str, ...], formation: Mapping[str, int], known: tuple[str, ...],
                   cap: int = MAX_INSTANCES) -> dict[str, int]:
    """Counts per started type: explicit entry, else ``all``, else 1; each within ``cap``."""
    for name in formation:
        if name != "all" and name not in known:
            raise UsageError(f"formation names unknown process type {name!r}; the Procfile defines {', '.join(known)}")
        if name == RELEASE_TYPE:
            raise UsageError(f"formation: {RELEASE_TYPE} runs once before the other types; it cannot be scaled "
                             "(--no-release skips it)")
    default = formation.get("all", 1)
    counts = {t: formation.get(t, default) for t in types}
    check_cap(counts, cap)
    return counts


def check_cap(counts: Mapping[str, int], cap: int) -> None:
    for name, count in counts.items():
        if count > cap:
            raise UsageError(f"{name}={count} is more than {cap} instances of a type; "
                             "set max_instances in procrun.yaml if you mean it")


def port_clash(instances: Iterable[Instance], taken: Mapping[int, str] | None = None) -> str | None:
    """The first two instances that would share a port, in words; None when all differ.

    honcho's formula gives each type 100 ports, so the 101st instance of a type
    gets the first port of the next type."""
    owners = dict(taken or {})
    for inst in instances:
        if not inst.port:  # none, or AUTO_PORT: picked free at spawn
            continue
        other = owners.setdefault(inst.port, inst.name)
        if other != inst.name:
            return (f"{other} and {inst.name} would both get port {inst.port} (each type has 100 ports "
                    "from the base port); run fewer than 100 instances of a type, or list that type last")
    return None


def fd_budget(instances: int) -> int:
    """Open files a session needs: a pipe per instance, a ready probe each, and procrun's own."""
    return 2 * instances + 64


def type_port(base: int, types: tuple[str, ...], type_name: str, index: int) -> int:
    """honcho's formula: base + 100 * (position of type) + (index - 1)."""
    return base + 100 * types.index(type_name) + index - 1


def instance(procfile: Procfile, types: tuple[str, ...], type_name: str, index: int,
             base_port: int | None, env: Mapping[str, str], cwd: str = "") -> Instance:
    """``type_name``.``index`` with its port (none for release: it serves nothing) and variables."""
    command = procfile.get(type_name).command  # type: ignore[union-attr]
    port = None if base_port is None or type_name == RELEASE_TYPE else type_port(base_port, types, type_name, index)
    if port is not None and port > MAX_PORT:
        raise UsageError(f"{type_name}.{index} would get port {port}, above {MAX_PORT}; use a lower --port")
    name = f"{type_name}.{index}"
    full = dict(env)
    if port is not None:
        full["PORT"] = str(port)
    for var in INSTANCE_NAME_VARS:
        full[var] = name
    return Instance(type_name, index, command, port, full, cwd)


AUTO_PORT = 0  # a port the session picks when the instance first starts (web behind the router)


def with_port(inst: Instance, port: int) -> Instance:
    """The same instance on another port (the router gives web instances internal ports)."""
    env = dict(inst.env)
    env["PORT"] = str(port)
    return inst._replace(port=port, env=env)


def plan(procfile: Procfile, types: tuple[str, ...], counts: Mapping[str, int],
         base_port: int | None, env: Callable[[str], Mapping[str, str]] | Mapping[str, str],
         cwds: Mapping[str, str] | None = None) -> tuple[Instance, ...]:
    """Every instance of the formation, in Procfile order then index; no two share a port.
    ``env``: the environment, or each type's (its procrun.yaml env over .env)."""
    env_of = env if callable(env) else lambda _: env
    instances = tuple(instance(procfile, types, t, i, base_port, env_of(t), (cwds or {}).get(t, ""))
                      for t in types for i in range(1, counts.get(t, 0) + 1))
    clash = port_clash(instances)
    if clash is not None:
        raise UsageError(clash)
    return instances


ROUTED_TYPE = "web"  # the type the router serves


class Plan(NamedTuple):
    """The formation to start: selected types, their counts and every instance, and the release
    phase that runs before them (None: no ``release:`` line, or --no-release)."""

    types: tuple[str, ...]
    counts: Mapping[str, int]
    instances: tuple[Instance, ...]
    release: Instance | None = None


def make_plan(procfile: Procfile, settings: Settings, environment: Mapping[str, str],
              type_env: Mapping[str, Mapping[str, str]] | None = None) -> Plan:
    """The formation the settings ask for, with every instance: what check, export and start use.
    ``type_env``: each type's own variables (procrun.yaml env_file and env), over ``environment``."""
    s = settings
    types = select_types(procfile, s.types)
    counts = resolve_counts(types, parse_formation(s.formation), procfile.names, s.max_instances)
    env_of = lambda t: {**environment, **(type_env or {}).get(t, {})}  # noqa: E731
    cwds = {t: c.cwd for t, c in s.type_settings.items() if c.cwd}
    instances = plan(procfile, types, counts, s.port, env_of, cwds)
    release = None
    if s.release and procfile.get(RELEASE_TYPE) is not None:
        release = instance(procfile, types, RELEASE_TYPE, 1, s.port, env_of(RELEASE_TYPE), cwds.get(RELEASE_TYPE, ""))
    return Plan(types, counts, instances, release)
