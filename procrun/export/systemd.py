"""systemd: a target plus one service per instance; the whole cgroup is stopped."""

from __future__ import annotations

from procrun.export import ExportContext, File, TypeSpec, bounded
from procrun.project.plan import INSTANCE_NAME_VARS
from procrun.supervise.order import COMPLETED, READY


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


def type_env_name(ctx: ExportContext, t: TypeSpec) -> str:
    """A type's own variables (procrun.yaml env_file, env): a file read after the app's, so they win."""
    return bounded(f"{unit_name(ctx.app)}-{unit_name(t.name)}", 240) + ".env"


def _order(ctx: ExportContext, t: TypeSpec) -> list[str]:
    """[Unit] lines for what its start waits for: After= each instance of those types; Requires=
    those that must complete (release, one-shots: a failure stops it), Wants= those that must be up."""
    by_name = {spec.name: spec for spec in ctx.types}
    units = {c: [service_name(ctx, by_name[d], j) for d, cond in t.after if cond == c and d in by_name
                 for j in range(1, by_name[d].count + 1)] for c in (COMPLETED, READY)}
    every = units[COMPLETED] + units[READY]
    return ([f"After={' '.join(every)}"] if every else []) + \
        ([f"Requires={' '.join(units[COMPLETED])}"] if units[COMPLETED] else []) + \
        ([f"Wants={' '.join(units[READY])}"] if units[READY] else [])


def unit(ctx: ExportContext, t: TypeSpec, i: int) -> str:
    """The service of one instance (``t.name``.``i``): a long-running service, or a one-shot
    (release, ``oneshot: true``) that the services started after it are ordered behind."""
    name = f"{t.name}.{i}"
    app = _specifiers(ctx.app)  # (Description and SyslogIdentifier expand specifiers too)
    env_files = [f"{ctx.export_dir}/{target_name(ctx)}.env"] + ([f"{ctx.export_dir}/{type_env_name(ctx, t)}"]
                                                                if t.env else [])
    port = [("PORT", str(t.port + i - 1))] if t.port is not None else []
    environment = " ".join(env_assignment(k, v) for k, v in (
        *port, *((var, name) for var in INSTANCE_NAME_VARS), ("PATH", ctx.path)))
    kind = ["Type=oneshot", "RemainAfterExit=yes", "TimeoutStartSec=infinity"] if t.oneshot else ["Type=simple"]
    restart = ["Restart=no"] if t.release else ["Restart=on-failure", "RestartSec=1"] if t.oneshot else \
        ["Restart=always", "RestartSec=1"]
    return "\n".join([
        "[Unit]", f"Description={app} {name}", f"PartOf={target_name(ctx)}.target", *_order(ctx, t), "",
        "[Service]", *kind,
        f"WorkingDirectory={_specifiers(ctx.folder(t))}",
        *(f"EnvironmentFile={_specifiers(f)}" for f in env_files),
        f"Environment={environment}",
        f"ExecStart=/bin/sh -c {quote(t.command)}",
        *([f"User={ctx.user}"] if ctx.user else []),
        *restart, "KillMode=control-group", "KillSignal=SIGTERM",
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
    for t in ctx.types:
        if t.env:
            files[type_env_name(ctx, t)] = File("".join(env_file_line(k, v) + "\n" for k, v in t.env.items()), 0o600)
    return files
