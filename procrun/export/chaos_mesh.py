"""Chaos Mesh objects mirroring a procrun chaos session, for ``export kubernetes --chaos``.
Pure. Each is a ``Schedule`` (``@every`` the mean interval of what it mirrors):

- process chaos as ``PodChaos`` (kill and relocate: pod-kill; restart: container-kill; pause:
  pod-failure), one schedule per action, over the chaos types' pods;
- backing-service faults (``--chaos-backing``, the kinds ``chaos.backing_faults`` chooses, with
  the parameters it fixes or the table's defaults) as ``NetworkChaos`` from the app's pods to the
  service: latency -> delay with jitter, bandwidth -> bandwidth, outage -> partition (a partition
  drops packets: the app sees timeouts where procrun's proxy refused), blackhole and timeout ->
  loss 100 % (timeout's close has no equivalent), direction kept (upstream: to, downstream:
  from, both). NetworkChaos selects pods, not ports: the service is named by
  ``chaos.backing_targets`` (labels of its pods, or an external host); without it the object has
  the source only. Faults without an equivalent (reset, slow_close, slicer, limit_data) are
  named, never dropped silently.
"""

from __future__ import annotations

from procrun.backing.faults import KINDS, Fault, chosen, make
from procrun.export import ExportContext
from procrun.export.kubernetes import dns_name
from procrun.project.plan import RELEASE_TYPE

API = "chaos-mesh.org/v1alpha1"
POD_ACTION = {"kill": "pod-kill", "restart": "container-kill", "relocate": "pod-kill", "pause": "pod-failure"}
NETWORK = ("latency", "bandwidth", "outage", "blackhole", "timeout")  # the kinds NetworkChaos can mirror
DIRECTION = {"upstream": "to", "downstream": "from", "both": "both"}


def schedules(app: str, ctx: ExportContext) -> list[dict]:
    return pod_schedules(app, ctx) + network_schedules(app, ctx)


def notes(ctx: ExportContext) -> list[str]:
    """What the export cannot say in objects: faults without an equivalent, targets to fill in."""
    if not ctx.backing:
        return []
    unmapped = [kind for kind in _chosen(ctx) if kind not in NETWORK]
    out = [f"procrun's backing fault {kind} ({KINDS[kind].does}) has no NetworkChaos equivalent: not exported"
           for kind in unmapped]
    if "timeout" in _chosen(ctx):
        out.append("procrun's backing fault timeout is exported as loss 100 %: NetworkChaos cannot close the "
                   "connection after the timeout")
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
    types = tuple(t for t in chaos.types or (t.name for t in ctx.types) if t != RELEASE_TYPE)  # a deploy step
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
    """One schedule per (service, fault kind): procrun draws one of them per backing fault, so each
    comes every interval x services x kinds on average."""
    assert ctx.chaos is not None
    chosen = _chosen(ctx)
    every = ctx.chaos.interval * len(ctx.backing) * len(chosen)
    docs = []
    for var, target in ctx.backing:
        for kind, fixed in chosen.items():
            if kind not in NETWORK:
                continue
            fault = make(kind, fixed)
            direction = DIRECTION[fault.direction] if target else "to"  # from and both need a target
            spec: dict = {"mode": "all", "selector": {"labelSelectors": {"app.kubernetes.io/name": app}},
                          "direction": direction, "duration": f"{max(1, round(fault.seconds))}s"}
            spec |= _action(fault) | _target(target)
            docs.append(_schedule(f"{app}-{var}-{kind}", every, "NetworkChaos", spec))
    return docs


def _chosen(ctx: ExportContext) -> dict[str, dict[str, str]]:
    """The kinds the session would draw, each with what procrun.yaml fixes (the rest: defaults)."""
    return chosen(ctx.backing_faults)


def _action(fault: Fault) -> dict:
    if fault.kind == "latency":
        return {"action": "delay", "delay": {"latency": f"{fault.get('latency'):g}ms",
                                             "jitter": f"{fault.get('jitter'):g}ms"}}
    if fault.kind == "bandwidth":  # KB/s -> kbit/s; limit and buffer in bytes, as Chaos Mesh's examples
        return {"action": "bandwidth", "bandwidth": {"rate": f"{round(fault.get('rate') * 8)}kbps",
                                                     "limit": 20971520, "buffer": 10000}}
    if fault.kind == "outage":
        return {"action": "partition"}
    return {"action": "loss", "loss": {"loss": "100"}}  # blackhole, timeout


def _target(target: str | None) -> dict:
    if not target:
        return {}
    if "=" in target:
        labels = dict(pair.strip().partition("=")[::2] for pair in target.split(","))
        return {"target": {"mode": "all", "selector": {"labelSelectors": labels}}}
    return {"externalTargets": [target]}
