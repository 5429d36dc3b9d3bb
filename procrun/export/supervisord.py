"""supervisord: one [program] per type with numprocs, stopped as a group.

supervisord reads values through ConfigParser (``;`` and ``#`` after white space
start a comment, ``%`` interpolates) and ``environment=`` through a non-POSIX
shlex that cannot carry both quote characters. So no value from the Procfile or
``.env`` goes into the .conf: each type gets a small launcher script that sets
the environment with POSIX shell quoting (any value, newlines included, arrives
byte-exact) and execs the command. The .conf names it relative to itself
(``%(here)s``), and passes the instance number.
"""

from __future__ import annotations

import os
import re
import shlex

from procrun.errors import UsageError
from procrun.export import ExportContext, File, TypeSpec, bounded
from procrun.project.plan import INSTANCE_NAME_VARS


def _ini(text: str, what: str) -> str:
    """A value written into the .conf: % doubled; what ConfigParser would cut or join refused."""
    if "\n" in text or "\r" in text or any(f"{space}{mark}" in text for space in " \t" for mark in ";#"):
        raise UsageError(f"supervisord cannot read the {what} {text!r} (a newline, or ';' or '#' after a space, "
                         "ends its value); choose another")
    return text.replace("%", "%%")


def program_name(text: str) -> str:
    """A group, program or file name supervisord and a shell take as it is: a character
    supervisord refuses in names (space, :, /), ConfigParser interpolates (%) or its command
    line splits on (quotes, backslash) becomes _; 200 bytes at most."""
    return bounded(re.sub(r"[^A-Za-z0-9._+@=-]", "_", text), 200)


def launcher(ctx: ExportContext, t: TypeSpec) -> str:
    """The script supervisord runs for each instance of a type; $1 is the instance number."""
    exports = [f"export {k}={shlex.quote(v)}" for k, v in ctx.env_of(t).items()]
    return "\n".join([
        "#!/bin/sh",
        f"# {ctx.app} {t.name}: exported by procrun from the Procfile; supervisord passes the instance number.",
        f"cd {shlex.quote(ctx.folder(t))} || exit 1",
        *exports,
        f"export PATH={shlex.quote(ctx.path)}",
        *([f'export PORT=$(({t.port} + $1 - 1))'] if t.port is not None else []),
        "export " + " ".join(f'{var}="{t.name}.$1"' for var in INSTANCE_NAME_VARS),
        f"exec /bin/sh -c {shlex.quote(t.command)}",
        "",
    ])


def _restarts(t: TypeSpec) -> list[str]:
    """A one-shot ends when it is done: restarted only when it fails (exit code other than 0)."""
    if t.oneshot:
        return ["autorestart=unexpected", "exitcodes=0", "startsecs=0"]
    return ["autorestart=true", "startsecs=1"]


def render(ctx: ExportContext) -> dict[str, File]:
    log_dir = _ini(ctx.log_dir or os.path.join(ctx.export_dir, "log"), "log directory")
    app = program_name(ctx.app)
    types = [t for t in ctx.types if t.count > 0 and not t.release]  # supervisord has no release phase
    programs = [program_name(f"{app}-{t.name}") for t in types]
    lines = [f"; {app}: exported by procrun from the Procfile. Include this file from supervisord.conf.",
             *[f"; supervisord cannot run release before the other programs: run it before each start: {t.command!r}"
               .replace("\n", " ") for t in ctx.types if t.release],
             f"[group:{app}]", f"programs={','.join(programs)}", ""]
    files: dict[str, File] = {}
    for t in types:
        program = program_name(f"{app}-{t.name}")
        script = f"{program}.sh"
        files[script] = File(launcher(ctx, t), 0o755)
        lines += [
            f"[program:{program}]",
            f"command=/bin/sh {_here(ctx, script)} %(process_num)d",
            "process_name=%(program_name)s-%(process_num)d",
            f"numprocs={t.count}",
            "numprocs_start=1",
            *([f"directory={_ini(ctx.folder(t), 'folder')}"] if t.cwd else []),
            *([f"user={_ini(ctx.user, 'user')}"] if ctx.user else []),
            "autostart=true",
            *_restarts(t),
            "stopsignal=TERM",
            f"stopwaitsecs={max(1, round(ctx.timeout))}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log_dir}/{t.name}-%(process_num)d.log",
            "",
        ]
    files[f"{app}.conf"] = File("\n".join(lines))
    files["log/.keep"] = File("")
    return files


def _here(ctx: ExportContext, script: str) -> str:
    """The launcher's path on the command line: relative to the .conf (%(here)s, the export can
    move) when the export folder's name survives supervisord's quoting, else absolute, quoted."""
    if not any(c in ctx.export_dir for c in '"\\$`\n'):
        return f'"%(here)s/{script}"'
    return _ini(shlex.quote(os.path.join(ctx.export_dir, script)), "export folder")
