"""Compose: one service per type, replicated."""

from __future__ import annotations

import posixpath

from procrun.export import ExportContext, File
from procrun.export.kubernetes import dns_name, dump, unique_names
from procrun.project.plan import INSTANCE_NAME_VARS
from procrun.supervise.order import COMPLETED, READY


def _dollar(text: str) -> str:
    """Compose interpolates $VAR in every value: a literal $ is $$."""
    return text.replace("$", "$$")


CONDITIONS = {COMPLETED: "service_completed_successfully", READY: "service_started"}


def render(ctx: ExportContext) -> dict[str, File]:
    unique_names(tuple(t.name for t in ctx.types), dns_name)
    services = {}
    for t in ctx.types:
        env = {k: _dollar(v) for k, v in ctx.env_of(t).items()}
        if t.port is not None:
            env["PORT"] = str(t.port)
        env.update(dict.fromkeys(INSTANCE_NAME_VARS, t.name))
        service: dict = {"image": ctx.image} if ctx.image else {"build": {"context": ctx.root}}
        service.update({
            "command": ["/bin/sh", "-c", _dollar(t.command)],
            "environment": env,
            "deploy": {"mode": "replicated", "replicas": t.count},
            "stop_grace_period": f"{max(1, round(ctx.timeout))}s",
            "restart": "no" if t.release else "on-failure" if t.oneshot else "always",
        })
        if t.cwd:
            service["working_dir"] = posixpath.join(ctx.app_dir, t.cwd)
        if t.after:  # release, one-shots: completed successfully; the others: started
            service["depends_on"] = {dns_name(d): {"condition": CONDITIONS[c]} for d, c in t.after}
        if t.name == "web" and t.port is not None:
            service["expose"] = [str(t.port)]
        services[dns_name(t.name)] = service
    doc = {"name": dns_name(ctx.app), "services": services}
    return {"compose.yaml": File(dump([doc]))}
