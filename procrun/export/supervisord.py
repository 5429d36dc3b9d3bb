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
import shlex

from procrun.errors import UsageError
from procrun.export import ExportContext, File
from procrun.project.plan import INSTANCE_NAME_VARS


def _ini(text: str, what: str) -> str:
    """A value written into the .conf: % doubled; what ConfigParser would cut or join refused."""
    if "\n" in text or "\r" in text or any(f"{space}{mark}" in text for space in " \t" for mark in ";#"):
        raise UsageError(f"supervisord cannot read the {what} {text!r} (a newline, or ';' or '#' after a space, "
                         "ends its value); choose another")
    return text.replace("%", "%%")


def launcher(ctx: ExportContext, type_name: str, command: str, port: int) -> str:
    """The script supervisord runs for each instance of a type; $1 is the instance number."""
    exports = [f"export {k}={shlex.quote(v)}" for k, v in ctx.env.items()]
    return "\n".join([
        "#!/bin/sh",
        f"# {ctx.app} {type_name}: exported by procrun from the Procfile; supervisord passes the instance number.",
        f"cd {shlex.quote(ctx.root)} || exit 1",
        *exports,
        f"export PATH={shlex.quote(ctx.path)}",
        f'export PORT=$(({port} + $1 - 1))',
        "export " + " ".join(f'{var}="{type_name}.$1"' for var in INSTANCE_NAME_VARS),
        f"exec /bin/sh -c {shlex.quote(command)}",
        "",
    ])


def render(ctx: ExportContext) -> dict[str, File]:
    log_dir = _ini(ctx.log_dir or os.path.join(ctx.export_dir, "log"), "log directory")
    app = _ini(ctx.app, "app name")
    programs = [f"{app}-{t.name}" for t in ctx.types if t.count > 0]
    lines = [f"; {app}: exported by procrun from the Procfile. Include this file from supervisord.conf.",
             f"[group:{app}]", f"programs={','.join(programs)}", ""]
    files: dict[str, File] = {}
    for t in ctx.types:
        if t.count == 0:
            continue
        script = f"{ctx.app}-{t.name}.sh"
        files[script] = File(launcher(ctx, t.name, t.command, t.port), 0o755)
        lines += [
            f"[program:{app}-{t.name}]",
            f'command=/bin/sh "%(here)s/{_ini(script, "app name")}" %(process_num)d',
            "process_name=%(program_name)s-%(process_num)d",
            f"numprocs={t.count}",
            "numprocs_start=1",
            *([f"user={_ini(ctx.user, 'user')}"] if ctx.user else []),
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "stopsignal=TERM",
            f"stopwaitsecs={max(1, round(ctx.timeout))}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log_dir}/{t.name}-%(process_num)d.log",
            "",
        ]
    files[f"{ctx.app}.conf"] = File("\n".join(lines))
    files["log/.keep"] = File("")
    return files
