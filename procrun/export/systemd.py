"""systemd: a target plus one service per instance; the whole cgroup is stopped."""

from __future__ import annotations

from procrun.export import ExportContext, File, TypeSpec
from procrun.project.plan import INSTANCE_NAME_VARS


def quote(arg: str) -> str:
    """One ExecStart argument: systemd unquotes C-style and expands $ and % itself."""
    escaped = (arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
               .replace("\n", "\\n"))
    return f'"{escaped}"'


def env_assignment(key: str, value: str) -> str:
    """A KEY=value word for Environment= (quoted; % is a specifier)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("\n", "\\n")
    return f'"{key}={escaped}"'


def env_file_line(key: str, value: str) -> str:
    """EnvironmentFile= lines (systemd.exec(5), env-file.c): inside double quotes a backslash
    escapes one of \\ " ` $, and a newline is kept as it is; no specifiers here."""
    escaped = "".join("\\" + c if c in '\\"`$' else c for c in value)
    return f'{key}="{escaped}"'


def _specifiers(text: str) -> str:
    """A path in a unit file: % starts a specifier."""
    return text.replace("%", "%%")


def unit(ctx: ExportContext, t: TypeSpec, i: int) -> str:
    """The service of one instance (``t.name``.``i``)."""
    name = f"{t.name}.{i}"
    env_file = f"{ctx.export_dir}/{ctx.app}.env"
    environment = " ".join(env_assignment(k, v) for k, v in (
        ("PORT", str(t.port + i - 1)), *((var, name) for var in INSTANCE_NAME_VARS), ("PATH", ctx.path)))
    return "\n".join([
        "[Unit]", f"Description={ctx.app} {name}", f"PartOf={ctx.app}.target", "",
        "[Service]", "Type=simple",
        f"WorkingDirectory={_specifiers(ctx.root)}",
        f"EnvironmentFile={_specifiers(env_file)}",
        f"Environment={environment}",
        f"ExecStart=/bin/sh -c {quote(t.command)}",
        *([f"User={ctx.user}"] if ctx.user else []),
        "Restart=always", "RestartSec=1", "KillMode=control-group", "KillSignal=SIGTERM",
        f"TimeoutStopSec={max(1, round(ctx.timeout))}",
        "StandardOutput=journal", "StandardError=journal", f"SyslogIdentifier={ctx.app}-{name}", "",
        "[Install]", f"WantedBy={ctx.app}.target", ""])


def render(ctx: ExportContext) -> dict[str, File]:
    files = {f"{ctx.app}-{t.name}-{i}.service": File(unit(ctx, t, i))
             for t in ctx.types for i in range(1, t.count + 1)}
    files[f"{ctx.app}.target"] = File("\n".join([
        "[Unit]", f"Description={ctx.app} (exported by procrun)", f"Wants={' '.join(files)}", "",
        "[Install]", "WantedBy=multi-user.target", ""]))
    files[f"{ctx.app}.env"] = File("".join(env_file_line(k, v) + "\n" for k, v in ctx.env.items()), 0o600)
    return files
