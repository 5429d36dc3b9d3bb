"""Kubernetes: a Deployment per type, a Service for web; optional Chaos Mesh schedules."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

import yaml

from procrun.errors import UsageError
from procrun.export import ExportContext, File, TypeSpec, bounded
from procrun.project.plan import INSTANCE_NAME_VARS

def dns_name(text: str) -> str:
    """A DNS label (RFC 1123: a-z, 0-9 and -, at most 63, starting and ending alphanumeric); a
    longer one is cut and ends with a hash of the whole, so two long names never become one."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "app"
    return bounded(name, 63, "-")


def expand_safe(text: str) -> str:
    """Kubernetes expands $(VAR) in env values and commands, and turns $$ into $: double every $."""
    return text.replace("$", "$$")


def unique_names(types: tuple[str, ...], name: Callable[[str], str]) -> None:
    """Two Procfile types that map to one engine name (web_a, web-a) would silently become one."""
    seen: dict[str, str] = {}
    for type_name in types:
        other = seen.setdefault(name(type_name), type_name)
        if other != type_name:
            raise UsageError(f"process types {other!r} and {type_name!r} would both be named {name(type_name)!r} "
                             "in this export (its names allow only a-z, 0-9 and -); rename one of them in the Procfile")


class _Plain(yaml.SafeDumper):
    """No anchors and aliases (&id001, *id001) for objects a document shares: plain YAML."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump(docs: list[dict]) -> str:
    return yaml.dump_all(docs, Dumper=_Plain, sort_keys=False, default_flow_style=False)


def _container(ctx: ExportContext, t: TypeSpec) -> dict:
    env = [{"name": k, "value": expand_safe(v)} for k, v in ctx.env_of(t).items() if k != "PORT"]
    if t.port is not None:
        env.append({"name": "PORT", "value": str(t.port)})
    for var in INSTANCE_NAME_VARS:
        env.append({"name": var, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    container = {"name": dns_name(t.name), "image": ctx.image, "command": ["/bin/sh", "-c", expand_safe(t.command)],
                 "env": env}
    if t.cwd:
        container["workingDir"] = posixpath.join(ctx.app_dir, t.cwd)
    if t.name == "web" and t.port is not None:
        container["ports"] = [{"name": "http", "containerPort": t.port}]
    return container


def _workload(ctx: ExportContext, t: TypeSpec, name: str, labels: dict) -> dict:
    """A Deployment; a one-shot (release, ``oneshot: true``) is a Job: it runs to completion once,
    where an init container would run once per replica."""
    pod = {"terminationGracePeriodSeconds": max(1, round(ctx.timeout)), "containers": [_container(ctx, t)]}
    if t.oneshot:
        pod = {"restartPolicy": "Never" if t.release else "OnFailure", **pod}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
                "spec": {"completions": t.count, "parallelism": t.count, "backoffLimit": 0 if t.release else 6,
                         "template": {"metadata": {"labels": labels}, "spec": pod}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": t.count, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def render(ctx: ExportContext) -> dict[str, File]:
    app = dns_name(ctx.app)
    unique_names(tuple(t.name for t in ctx.types), lambda t: dns_name(f"{app}-{t}"))
    docs: list[dict] = []
    files: dict[str, File] = {}
    for t in ctx.types:
        name = dns_name(f"{app}-{t.name}")
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/component": dns_name(t.name)}
        if t.release:  # its own file: applied, and waited for, before the formation
            files[f"{app}-release.yaml"] = File(RELEASE_NOTE.format(name=name) + dump([_workload(ctx, t, name, labels)]))
            continue
        docs.append(_workload(ctx, t, name, labels))
        if t.name == "web" and t.port is not None:
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
                         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": t.port}]}})
    files[f"{app}.yaml"] = File(dump(docs))
    if ctx.chaos is not None:
        from procrun.export.chaos_mesh import notes, schedules

        head = "".join(f"# {line}\n" for line in notes(ctx))
        files[f"{app}-chaos-mesh.yaml"] = File(head + dump(schedules(app, ctx)))
    return files


RELEASE_NOTE = """\
# The release phase: a Job that runs once per deploy, before the formation starts. Apply it first
# and wait for it: kubectl apply -f this file && kubectl wait --for=condition=complete job/{name}
# (a Job's template cannot change: kubectl delete job {name} before the next release).
"""
