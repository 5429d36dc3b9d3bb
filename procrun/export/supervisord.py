"""supervisord: one [program] per type with numprocs, stopped as a group."""

from __future__ import annotations

import os
import shlex

from procrun.export import ExportContext, File


def _percent(text: str) -> str:
    """supervisord expands %(name)s in values: a literal % is %%."""
    return text.replace("%", "%%")


def _env_value(value: str) -> str:
    """environment= values are read with shlex: double-quote and escape."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(ctx: ExportContext) -> dict[str, File]:
    log_dir = ctx.log_dir or os.path.join(ctx.export_dir, "log")
    programs = [f"{ctx.app}-{t.name}" for t in ctx.types if t.count > 0]
    lines = [f"; {ctx.app}: exported by procrun from the Procfile. Include this file from supervisord.conf.",
             f"[group:{ctx.app}]", f"programs={','.join(programs)}", ""]
    env_items = [f"{k}={_percent(_env_value(v))}" for k, v in ctx.env.items()]
    for t in ctx.types:
        if t.count == 0:
            continue
        # PORT differs per instance: computed by the shell from supervisord's process_num.
        script = f"PORT=$(({t.port} + %(process_num)d - 1)); export PORT; {_percent(t.command)}"
        names = [f"PS={_env_value(t.name + '.%(process_num)d')}",
                 f"DYNO={_env_value(t.name + '.%(process_num)d')}",
                 f"HONCHO_PROCESS_NAME={_env_value(t.name + '.%(process_num)d')}",
                 f"PATH={_percent(_env_value(ctx.path))}"]
        lines += [
            f"[program:{ctx.app}-{t.name}]",
            f"command=/bin/sh -c {shlex.quote(script)}",
            "process_name=%(program_name)s-%(process_num)d",
            f"numprocs={t.count}",
            "numprocs_start=1",
            f"directory={_percent(ctx.root)}",
            f"environment={','.join(env_items + names)}",
            *( [f"user={ctx.user}"] if ctx.user else [] ),
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "stopsignal=TERM",
            f"stopwaitsecs={max(1, round(ctx.timeout))}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_percent(log_dir)}/{t.name}-%(process_num)d.log",
            "",
        ]
    return {f"{ctx.app}.conf": File("\n".join(lines)), "log/.keep": File("")}
