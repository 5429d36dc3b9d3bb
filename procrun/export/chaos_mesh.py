"""Chaos Mesh objects mirroring a procrun chaos session, for ``export kubernetes --chaos``.
Pure. Each is a ``Schedule`` (``@every`` the mean interval of what it mirrors):

- process chaos as ``PodChaos`` (kill and relocate: pod-kill; restart: container-kill; pause:
  pod-failure), one schedule per action, over the chaos types' pods;
- backing-service faults (``--chaos-backing``) as ``NetworkChaos`` from the app's pods to the
  service: latency -> delay (procrun's mean, its +-50 % as jitter), outage -> partition (a
  partition drops packets: the app sees timeouts where procrun's proxy refused), blackhole ->
  loss 100 %, direction ``to``. NetworkChaos selects pods, not ports: the service is named by
  ``chaos.backing_targets`` (labels of its pods, or an external host); without it the object has
  the source only. ``reset`` has no NetworkChaos equivalent: it is named, never dropped silently.
"""

from __future__ import annotations

from procrun.export import ExportContext
from procrun.export.kubernetes import dns_name

API = "chaos-mesh.org/v1alpha1"
POD_ACTION = {"kill": "pod-kill", "restart": "container-kill", "relocate": "pod-kill", "pause": "pod-failure"}
# procrun's backing faults (backing.service.FAULTS and draw()): latency 50-500 ms, faults of 1-5 s
NETWORK = ("latency", "outage", "blackhole")
UNMAPPED = ("reset",)
LATENCY_MS, FAULT_SECONDS = 275, 3


def schedules(app: str, ctx: ExportContext) -> list[dict]:
    return pod_schedules(app, ctx) + network_schedules(app, ctx)


def notes(ctx: ExportContext) -> list[str]:
    """What the export cannot say in objects: faults without an equivalent, targets to fill in."""
    if not ctx.backing:
        return []
    out = [f"procrun's backing fault {', '.join(UNMAPPED)} (every open connection reset) has no NetworkChaos "
           "equivalent: not exported"]
    missing = [var for var, target in ctx.backing if not target]
    if missing:
        out.append(f"no target for {', '.join(missing)}: the NetworkChaos objects select only the app's pods; set "
                   "chaos.backing_targets in procrun.yaml ({VAR: app=redis} for pods, {VAR: db.internal} for a host)")
    return out


def _schedule(name: str, every: float, kind: str, spec: dict) -> dict:
    field = kind[0].lower() + kind[1:]  # PodChaos -> podChaos
    return {"apiVersion": API, "kind": "Schedule", "metadata": {"name": dns_name(name)},
            "spec": {"schedule": f"@every {max(1, round(every))}s", "type": kind, "historyLimit": 5,
                     "concurrencyPolicy": "Forbid", field: spec}}


def pod_schedules(app: str, ctx: ExportContext) -> list[dict]:
    """The mean interval split over the actions."""
    assert ctx.chaos is not None
    chaos = ctx.chaos
    actions = sorted({POD_ACTION[a] for a in chaos.actions})
    types = chaos.types or tuple(t.name for t in ctx.types)
    docs = []
    for action in actions:
        spec: dict = {"action": action, "mode": "one",
                      "selector": {"expressionSelectors": [
                          {"key": "app.kubernetes.io/component", "operator": "In", "values": [dns_name(t) for t in types]}],
                          "labelSelectors": {"app.kubernetes.io/name": app}}}
        if action == "pod-failure":
            spec["duration"] = f"{max(1, round(chaos.pause_max))}s"
        if action == "container-kill":
            spec["containerNames"] = [dns_name(t) for t in types]
        docs.append(_schedule(f"{app}-{action}", chaos.interval * len(actions), "PodChaos", spec))
    return docs


def network_schedules(app: str, ctx: ExportContext) -> list[dict]:
    """One schedule per (service, fault): procrun draws one of them per backing fault, so each
    comes every interval x services x faults on average."""
    assert ctx.chaos is not None
    every = ctx.chaos.interval * len(ctx.backing) * (len(NETWORK) + len(UNMAPPED))
    docs = []
    for var, target in ctx.backing:
        for fault in NETWORK:
            spec: dict = {"mode": "all", "selector": {"labelSelectors": {"app.kubernetes.io/name": app}},
                          "direction": "to", "duration": f"{FAULT_SECONDS}s"}
            if fault == "latency":
                spec |= {"action": "delay", "delay": {"latency": f"{LATENCY_MS}ms", "jitter": f"{LATENCY_MS // 2}ms"}}
            elif fault == "outage":
                spec["action"] = "partition"
            else:
                spec |= {"action": "loss", "loss": {"loss": "100"}}
            spec |= _target(target)
            docs.append(_schedule(f"{app}-{var}-{fault}", every, "NetworkChaos", spec))
    return docs


def _target(target: str | None) -> dict:
    if not target:
        return {}
    if "=" in target:
        labels = dict(pair.strip().partition("=")[::2] for pair in target.split(","))
        return {"target": {"mode": "all", "selector": {"labelSelectors": labels}}}
    return {"externalTargets": [target]}
