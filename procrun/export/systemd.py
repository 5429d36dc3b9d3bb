"""systemd: a target plus one service per instance; the whole cgroup is stopped."""

from __future__ import annotations

from procrun.export import ExportContext, File, TypeSpec, bounded
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


def unit_name(text: str) -> str:
    """A unit name part, as systemd-escape makes one: a character a unit name cannot hold (and a
    leading dot) becomes \\xNN per UTF-8 byte; - _ . and alphanumerics stay (: too is escaped:
    systemd-analyze cannot verify a unit file whose name holds one)."""
    out = []
    for i, char in enumerate(text):
        if (char.isascii() and (char.isalnum() or char in "_-.")) and not (i == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


def target_name(ctx: ExportContext) -> str:
    """The app's target (and env file) name: escaped, within a file name's 255 bytes."""
    return bounded(unit_name(ctx.app), 240)


def service_name(ctx: ExportContext, t: TypeSpec, i: int) -> str:
    return bounded(f"{unit_name(ctx.app)}-{t.name}-{i}", 240) + ".service"


def _specifiers(text: str) -> str:
    """A path in a unit file: % starts a specifier."""
    return text.replace("%", "%%")


def unit(ctx: ExportContext, t: TypeSpec, i: int) -> str:
    """The service of one instance (``t.name``.``i``)."""
    name = f"{t.name}.{i}"
    app = _specifiers(ctx.app)  # (Description and SyslogIdentifier expand specifiers too)
    env_file = f"{ctx.export_dir}/{target_name(ctx)}.env"
    environment = " ".join(env_assignment(k, v) for k, v in (
        ("PORT", str(t.port + i - 1)), *((var, name) for var in INSTANCE_NAME_VARS), ("PATH", ctx.path)))
    return "\n".join([
        "[Unit]", f"Description={app} {name}", f"PartOf={target_name(ctx)}.target", "",
        "[Service]", "Type=simple",
        f"WorkingDirectory={_specifiers(ctx.root)}",
        f"EnvironmentFile={_specifiers(env_file)}",
        f"Environment={environment}",
        f"ExecStart=/bin/sh -c {quote(t.command)}",
        *([f"User={ctx.user}"] if ctx.user else []),
        "Restart=always", "RestartSec=1", "KillMode=control-group", "KillSignal=SIGTERM",
        f"TimeoutStopSec={max(1, round(ctx.timeout))}",
        "StandardOutput=journal", "StandardError=journal", f"SyslogIdentifier={app}-{name}", "",
        "[Install]", f"WantedBy={target_name(ctx)}.target", ""])


def render(ctx: ExportContext) -> dict[str, File]:
    app = target_name(ctx)
    files = {service_name(ctx, t, i): File(unit(ctx, t, i)) for t in ctx.types for i in range(1, t.count + 1)}
    files[f"{app}.target"] = File("\n".join([
        "[Unit]", f"Description={_specifiers(ctx.app)} (exported by procrun)", f"Wants={' '.join(files)}", "",
        "[Install]", "WantedBy=multi-user.target", ""]))
    files[f"{app}.env"] = File("".join(env_file_line(k, v) + "\n" for k, v in ctx.env.items()), 0o600)
    return files
