"""systemd: a target plus one service per instance; the whole cgroup is stopped."""

from __future__ import annotations

from procrun.export import ExportContext, File


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


def render(ctx: ExportContext) -> dict[str, File]:
    files: dict[str, File] = {}
    units = []
    env_file = f"{ctx.export_dir}/{ctx.app}.env"
    for t in ctx.types:
        for i in range(1, t.count + 1):
            unit = f"{ctx.app}-{t.name}-{i}.service"
            units.append(unit)
            name = f"{t.name}.{i}"
            environment = " ".join(env_assignment(k, v) for k, v in (
                ("PORT", str(t.port + i - 1)), ("PS", name), ("DYNO", name), ("HONCHO_PROCESS_NAME", name),
                ("PATH", ctx.path)))
            lines = [
                "[Unit]",
                f"Description={ctx.app} {name}",
                f"PartOf={ctx.app}.target",
                "",
                "[Service]",
                "Type=simple",
                f"WorkingDirectory={_specifiers(ctx.root)}",
                f"EnvironmentFile={_specifiers(env_file)}",
                f"Environment={environment}",
                f"ExecStart=/bin/sh -c {quote(t.command)}",
                *([f"User={ctx.user}"] if ctx.user else []),
                "Restart=always",
                "RestartSec=1",
                "KillMode=control-group",
                "KillSignal=SIGTERM",
                f"TimeoutStopSec={max(1, round(ctx.timeout))}",
                "StandardOutput=journal",
                "StandardError=journal",
                f"SyslogIdentifier={ctx.app}-{name}",
                "",
                "[Install]",
                f"WantedBy={ctx.app}.target",
                "",
            ]
            files[unit] = File("\n".join(lines))
    files[f"{ctx.app}.target"] = File("\n".join([
        "[Unit]", f"Description={ctx.app} (exported by procrun)", f"Wants={' '.join(units)}", "",
        "[Install]", "WantedBy=multi-user.target", ""]))
    files[f"{ctx.app}.env"] = File("".join(env_file_line(k, v) + "\n" for k, v in ctx.env.items()), 0o600)
    return files
