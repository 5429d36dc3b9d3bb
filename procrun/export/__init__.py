"""Exporters: render the formation as files for another engine. Pure.

Each renderer takes an ``ExportContext`` and returns ``{relative path: File}``;
``procrun.app.export`` writes them (temporary directory first, then moved).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from procrun.chaos.schedule import ChaosConfig
from procrun.project.plan import RELEASE_TYPE


SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
APP_BINS = (".venv/bin", "venv/bin", "env/bin", "node_modules/.bin", "bin")  # the app's own, when present


@dataclass(frozen=True)
class File:
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class TypeSpec:
    name: str
    command: str
    count: int
    port: int | None  # the port of instance 1 (honcho formula); instance i gets port + i - 1; release: none
    env: Mapping[str, str] = field(default_factory=dict)  # its own (procrun.yaml env_file, env): over .env's
    cwd: str = ""  # procrun.yaml types.T.cwd: a folder of the app root
    oneshot: bool = False  # exit 0 is done (a job), not a failure to restart
    after: tuple[tuple[str, str], ...] = ()  # (type, ready | completed) its start waits for; release first

    @property
    def release(self) -> bool:
        return self.name == RELEASE_TYPE


@dataclass(frozen=True)
class ExportContext:
    app: str
    root: str  # absolute app root: working directory of every process
    types: tuple[TypeSpec, ...]
    env: Mapping[str, str]  # from the .env files only, never procrun's own environment
    timeout: float = 5.0
    user: str | None = None
    log_dir: str | None = None  # absolute; default: <export dir>/log
    export_dir: str = ""
    path: str = ":".join(SYSTEM_PATH)  # export_path(): the app's bin folders, then the system's
    image: str | None = None
    chaos: ChaosConfig | None = None
    backing: tuple[tuple[str, str | None], ...] = ()  # --chaos-backing: proxied variable, its target (or None)
    backing_faults: tuple[str, ...] = ()  # chaos.backing_faults ("KIND [NAME=VALUE ...]"); (): every kind
    extra: Mapping[str, str] = field(default_factory=dict)
    app_dir: str = "/app"  # where the app is in the container image (kubernetes, compose)

    def folder(self, t: TypeSpec) -> str:
        """A type's working directory on this machine (supervisord, systemd)."""
        import posixpath

        return posixpath.join(self.root, t.cwd) if t.cwd else self.root

    def env_of(self, t: TypeSpec) -> dict[str, str]:
        """.env's values, then the type's own."""
        return {**self.env, **t.env}


Renderer = Callable[[ExportContext], dict[str, File]]


def export_path(root: str, present: Callable[[str], bool]) -> str:
    """The PATH an export gives supervisord and systemd processes (engines start them with
    almost none): the app's own bin folders that exist (a virtualenv's, node_modules/.bin),
    then the system's; never the PATH of the shell that ran the export (its shims and
    per-user folders are not there when the engine starts the app)."""
    import posixpath

    dirs = [posixpath.join(root, d) for d in APP_BINS if present(posixpath.join(root, d))] + list(SYSTEM_PATH)
    return ":".join(dict.fromkeys(dirs))


def bounded(name: str, limit: int, keep: str = "") -> str:
    """``name`` within ``limit`` bytes: a long one is cut and ends with a hash of the whole (two
    long names stay two), its last characters ``keep`` (like "-") stripped before the hash."""
    if len(name.encode()) <= limit:
        return name
    import hashlib

    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    cut = name.encode()[:limit - 9].decode(errors="ignore").rstrip(keep)
    return f"{cut}-{digest}"


def renderers() -> dict[str, Renderer]:
    from procrun.export import compose, kubernetes, supervisord, systemd

    return {"supervisord": supervisord.render, "systemd": systemd.render,
            "kubernetes": kubernetes.render, "compose": compose.render}


FORMATS = ("supervisord", "systemd", "kubernetes", "compose")
