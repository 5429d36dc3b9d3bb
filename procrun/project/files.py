"""Reading the app's files: procrun.yaml, the .env files and the Procfile, into one ``App``
with its resolved ``Settings``. The only module of ``project`` that opens files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from procrun.errors import ConfigError, UsageError
from procrun.project import envfile, procfile
from procrun.project.plan import ROUTED_TYPE
from procrun.project.settings import Settings, TypeSettings, resolve

CONFIG_FILE = "procrun.yaml"


class App(NamedTuple):
    """The app as loaded from disk: its Procfile, .env values and settings."""

    root: str
    procfile: procfile.Procfile
    dotenv: Mapping[str, str]
    settings: Settings
    env_paths: tuple[str, ...] = ()  # the .env files read
    type_env: Mapping[str, Mapping[str, str]] = {}  # per type: procrun.yaml env_file, then env

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Process env: procrun's own, overlaid by the .env files."""
        env = dict(os.environ if base is None else base)
        env.update(self.dotenv)
        return env


def read_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        hint = {"Procfile": "create it, or name another with -f FILE or another app root with -d DIR",
                "env file": "create it, or name the env files with -e FILE[,FILE]"}.get(what, "create it")
        raise ConfigError(os.path.abspath(path), None, f"{what} not found", hint) from None
    except IsADirectoryError:
        raise ConfigError(path, None, f"{what} is a directory", "name a file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read {what}: {exc.strerror}", "check its permissions") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # the byte order mark Windows editors write
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(path, line, f"{what} is not UTF-8 text", "save it as UTF-8") from None


def rel(root: str, path: str) -> str:
    """A path under the app root as the user would type it from here (for messages)."""
    full = os.path.join(root, path)
    short = os.path.relpath(full)
    return short if not short.startswith("..") else full


def env_file_list(values: Sequence[str]) -> tuple[list[str], bool]:
    """The .env files asked for (comma-separated, repeatable); default .env, which may be missing."""
    files = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return (files, True) if files else ([".env"], False)


def read_dotenv(paths: Sequence[str], required: bool) -> tuple[dict[str, str], list[str]]:
    """The .env files in order, later ones winning; missing ones skipped unless ``required``."""
    dotenv: dict[str, str] = {}
    read = []
    for path in paths:
        if not required and not os.path.exists(path):
            continue
        dotenv.update(envfile.parse(read_text(path, "env file"), path))
        read.append(path)
    return dotenv, read


def _line_of(path: str, key: str) -> int | None:
    """The line of a top-level key in procrun.yaml (for an error about its value)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if line.lstrip("\ufeff").startswith(f"{key}:"):
                    return number
    except OSError:
        pass
    return None


def read_config(root: str) -> tuple[dict[str, Any], dict[str, TypeSettings], str]:
    path = rel(root, CONFIG_FILE)
    if not os.path.exists(path):
        return {}, {}, path
    from procrun.project import config  # YAML is only loaded when there is a procrun.yaml

    values, types = config.parse(read_text(path, CONFIG_FILE), path)
    return values, types, path


def load(flags: Mapping[str, Any], edge: Mapping[str, Any], with_procfile: bool = True) -> App:
    """Read procrun.yaml, the .env files and (unless ``run`` asks not to) the Procfile;
    resolve every setting by precedence."""
    root = os.path.abspath(edge.get("app_root", "."))
    if not os.path.isdir(root):
        raise UsageError(f"--app-root {edge.get('app_root')!r} is not a directory; "
                         "pass the folder that holds the Procfile")
    values, types, config_path = read_config(root)
    files, required = env_file_list(flags.get("env_files") or values.get("env_files") or ())
    try:
        dotenv, paths = read_dotenv([rel(root, name) for name in files], required)
    except ConfigError as exc:  # a missing env file procrun.yaml names: said at its line there
        if flags.get("env_files") or not values.get("env_files") or exc.line is not None:
            raise
        raise ConfigError(config_path, _line_of(config_path, "env"), f"env: {exc.path} not found",
                          "create it, or correct the env list in procrun.yaml") from None
    settings = resolve(flags, values, dotenv, os.environ, _seed, paths[-1] if paths else ".env",
                       **{**edge, "app_root": root}, type_settings=types, config_path=config_path)
    path = rel(root, settings.procfile)
    pf = procfile.parse(read_text(path, "Procfile"), path) if with_procfile else procfile.Procfile(path, ())
    if with_procfile:
        for name, per_type in types.items():
            if pf.get(name) is None:
                raise ConfigError(config_path, per_type.line, f"types: {name!r} is not a process type in {pf.path}",
                                  f"use one of {', '.join(pf.names)}")
            for dep, (line, column) in zip(per_type.after, per_type.after_at):
                if pf.get(dep) is None:
                    raise ConfigError(config_path, line, f"types.{name}.after: {dep!r} is not a process type in "
                                      f"{pf.path}", f"use one of {', '.join(pf.names)}", column)
    type_env = {name: type_environment(root, config_path, name, per_type) for name, per_type in types.items()}
    return App(root, pf, dotenv, settings, tuple(paths), {t: e for t, e in type_env.items() if e})


def type_environment(root: str, config_path: str, name: str, per_type: TypeSettings) -> dict[str, str]:
    """A type's own variables (its env files, then ``env``), once its ``cwd`` is known to be a
    folder of the app root; a mistake is said at its line in procrun.yaml."""
    def fail(key: str, problem: str, fix: str) -> ConfigError:
        line, column = per_type.places.get(key, (per_type.line, None))
        return ConfigError(config_path, line, f"types.{name}.{key}: {problem}", fix, column)

    if per_type.cwd:
        folder = os.path.join(root, per_type.cwd)
        real = os.path.realpath(folder)
        if not os.path.isdir(folder):
            raise fail("cwd", f"{per_type.cwd} is not a folder of the app root", "create it, or correct the path")
        if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
            raise fail("cwd", f"{per_type.cwd} leads outside the app root (a link)", "name a folder inside it")
    env: dict[str, str] = {}
    for path in per_type.env_file:
        try:
            env.update(envfile.parse(read_text(os.path.join(root, path), "env file"), rel(root, path)))
        except ConfigError as exc:
            if exc.line is not None:  # a bad line in the file itself: said there
                raise
            raise fail("env_file", f"{rel(root, path)}: {exc.problem}", "create it, or correct the list") from None
    env.update(per_type.env)
    return env


def _seed() -> int:
    return int.from_bytes(os.urandom(4), "big")


def refuse_bad_input(app: App, routed: bool) -> None:
    """What the plan cannot tell: refused before anything starts."""
    s = app.settings
    for name in s.tty:
        if app.procfile.get(name) is None:
            raise UsageError(f"--tty {name}: not a process type in {app.procfile.path}; use one of "
                             f"{', '.join(app.procfile.names)}")
    if s.router_explicit and not routed:
        raise UsageError(f"--router needs a '{ROUTED_TYPE}' process type in {app.procfile.path}")
    from procrun.chaos.types import chaos_types

    chaos_types(app.settings, app.procfile)
