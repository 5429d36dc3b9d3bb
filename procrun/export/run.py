"""``procrun export FORMAT DIR``: the app's formation rendered for another engine (pure
renderers) and written into DIR (``stage``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from procrun.chaos.schedule import chaos_config
from procrun.errors import UsageError
from procrun.export import FORMATS, ExportContext, TypeSpec, export_path, renderers, stage
from procrun.project.files import load
from procrun.project.plan import RELEASE_TYPE, Plan, make_plan, type_port
from procrun.project.settings import TypeSettings
from procrun.supervise.order import first_start


def export(flags: Mapping[str, Any], edge: Mapping[str, Any], fmt: str, target: str, app_name: str | None,
           image: str | None, user: str | None, log_dir: str | None, app_dir: str = "/app") -> list[str]:
    """Render the formation for another engine and write it into ``target``; returns the paths."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not app_dir.startswith("/"):
        raise UsageError(f"--app-dir {app_dir!r}: write the folder of the image the app is in, like /app")
    app = load(flags, edge)
    s = app.settings
    plan = make_plan(app.procfile, s, app.environment({}), app.type_env)
    if fmt == "kubernetes" and not image:
        raise UsageError("export kubernetes needs the container image: pass --image NAME")
    types = _types(app, plan)
    target = os.path.abspath(target)
    ctx = ExportContext(app=app_name or os.path.basename(app.root) or "app", root=app.root, types=types,
                        env=dict(app.dotenv), timeout=s.timeout, user=user,
                        log_dir=os.path.abspath(log_dir) if log_dir else None, export_dir=target,
                        path=export_path(app.root, os.path.isdir), image=image,
                        chaos=chaos_config(app) if s.chaos else None, backing=_backing(app.dotenv, s),
                        backing_faults=s.chaos_backing_faults, app_dir=app_dir)
    files = renderers()[fmt](ctx)
    if fmt == "supervisord" and plan.release is not None:
        print(f"procrun export: supervisord cannot run {RELEASE_TYPE} before the other programs start; run it "
              f"yourself before each start: {plan.release.command}", file=sys.stderr)
    if fmt == "kubernetes" and ctx.chaos is not None:
        from procrun.export.chaos_mesh import notes

        for line in notes(ctx):
            print(f"procrun export: {line}", file=sys.stderr)
    if log_dir and fmt == "supervisord":  # supervisord will not start a program whose log path is missing
        try:
            os.makedirs(os.path.abspath(log_dir), exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create log directory {log_dir}: {exc.strerror}; pass -l DIR you can write") from None
    return stage.write(files, target)


def _types(app: Any, plan: Plan) -> tuple[TypeSpec, ...]:
    """Each type as the engines need it: count, port, its own env and folder, one-shot or not,
    and what its start waits for (the release phase first, as at procrun start)."""
    s, per_type = app.settings, app.settings.type_settings
    after = first_start({t: c.waits_for() for t, c in per_type.items() if c.after}, plan.types, plan.release is not None)
    exported = {*plan.types, *([RELEASE_TYPE] if plan.release is not None else [])}  # (a type left out: not waited for)
    types = []
    for t in plan.types:
        c = per_type.get(t, TypeSettings())
        types.append(TypeSpec(t, app.procfile.get(t).command, plan.counts[t], type_port(s.port, plan.types, t, 1),
                              app.type_env.get(t, {}), c.cwd or "", bool(c.oneshot),
                              tuple((d, w) for d, w in after.get(t, ()) if d in exported)))
    if plan.release is not None:
        types.insert(0, TypeSpec(RELEASE_TYPE, plan.release.command, 1, None, app.type_env.get(RELEASE_TYPE, {}),
                                 per_type.get(RELEASE_TYPE, TypeSettings()).cwd or "", True))
    return tuple(types)


def _backing(dotenv: Mapping[str, str], s: Any) -> tuple[tuple[str, str | None], ...]:
    """Under --chaos --chaos-backing: the variables a session would proxy, each with its target."""
    if not (s.chaos and s.chaos_backing):
        return ()
    from procrun.backing.urls import find

    targets = dict(s.chaos_backing_targets)
    proxied, _ = find(dotenv, ())
    return tuple((b.var, targets.get(b.var)) for b in proxied)
