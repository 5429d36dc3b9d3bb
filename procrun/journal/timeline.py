"""A session as one self-contained HTML page: lanes per instance, chaos markers, request
outcomes per second, findings linked to their moment, disposability and the replay command.

Pure: journal records and the report in, a string out. Inline CSS and SVG only: no script,
no network (the page's Content-Security-Policy forbids both).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from typing import Any

from procrun.supervise.output import clock

Record = Mapping[str, Any]
WIDTH, LABEL, LANE, AXIS, BARS = 1000, 110, 22, 24, 80  # SVG units
ACTION_MARK = {"kill": "K", "restart": "R", "relocate": "M", "pause": "P"}  # read on the page without hovering
CLASSES = (("ok", "2xx/3xx"), ("c4", "4xx"), ("c5", "5xx"), ("u", "503 (router: none ready)"))
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1200px;color:#222;background:#fff}
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px}
svg{display:block;width:100%;height:auto}
.meta,.finding,td,code{overflow-wrap:anywhere}code{background:#f3f3f3;padding:1px 3px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left}
.life{fill:#cfe3ff}.ready{fill:#6aa5f0}.paused{fill:#f5c36b}.exit{fill:#444}.crash{fill:#d62728}
.chaos{fill:#9c27b0}.fault{fill:#ba68c8}.skip{fill:none;stroke:#ba68c8}.found{fill:#e65100}.tick{stroke:#eee}.lbl{font-size:11px;fill:#333}
.act{font-size:8px;fill:#9c27b0;font-weight:bold}
.ok{fill:#5cb85c}.c4{fill:#f0ad4e}.c5{fill:#d9534f}.u{fill:#7b1fa2}
i.ok{background:#5cb85c}i.c4{background:#f0ad4e}i.c5{background:#d9534f}i.u{background:#7b1fa2}
.key span{display:inline-block;margin-right:12px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.finding{border-left:4px solid #e65100;padding:4px 8px;margin:6px 0;background:#fff7f0}
:target{outline:2px solid #e65100}
"""


def render(meta: Mapping[str, Any], records: Iterable[Record], report: Mapping[str, Any]) -> str:
    records = list(records)
    t0 = float(meta.get("started") or (records[0]["t"] if records else 0.0))
    t1 = max([t0 + 1.0] + [float(r["t"]) for r in records])
    scale = Scale(t0, t1)
    lanes = _lanes(records, t1)
    findings = _findings(records)
    parts = [f"<h1>procrun session {_e(meta.get('id', ''))}</h1>", _meta(meta, t0, t1),
             "<h2>Instances</h2>", _key(), _lanes_svg(lanes, records, findings, scale),
             "<h2>Requests through the router, per second</h2>", _requests_svg(records, scale),
             f"<h2>Findings ({len(findings)})</h2>", _findings_html(findings, t0, report),
             "<h2>Disposability</h2>", _disposability(report)]
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
            f"<title>procrun session {_e(meta.get('id', ''))}</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>\n")


class Scale:
    """Seconds since the start to SVG x."""

    def __init__(self, t0: float, t1: float) -> None:
        self.t0, self.span = t0, max(t1 - t0, 1e-3)

    def x(self, t: float) -> float:
        return round(LABEL + (WIDTH - LABEL - 4) * max(0.0, t - self.t0) / self.span, 1)

    def ticks(self) -> list[float]:
        step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 1e9) if self.span / s <= 10)
        return [i * step for i in range(int(self.span // step) + 1)]


class Life:
    """One process of an instance: from its start to its exit (or the page's end)."""

    def __init__(self, start: float, pid: int) -> None:
        self.start, self.pid = start, pid
        self.ready: float | None = None
        self.end: float | None = None
        self.code: int | None = None
        self.asked = False
        self.pauses: list[tuple[float, float]] = []


def _lanes(records: list[Record], t1: float) -> dict[str, list[Life]]:
    lanes: dict[str, list[Life]] = {}
    for r in records:
        name, kind = r.get("n"), r["k"]
        if kind == "start" and isinstance(name, str):
            lanes.setdefault(name, []).append(Life(float(r["t"]), int(r.get("pid", 0))))
            continue
        life = lanes[name][-1] if name in lanes else None
        if life is None or life.end is not None:
            continue
        if kind == "ready":
            life.ready = float(r["t"])
        elif kind == "exit":
            life.end, life.code, life.asked = float(r["t"]), int(r.get("code", 0)), bool(r.get("asked"))
        elif kind == "chaos" and r.get("action") == "pause":
            life.pauses.append((float(r["t"]), float(r.get("seconds", 0))))
    return lanes


def _findings(records: list[Record]) -> list[Record]:
    """Each finding once, at the moment it was first seen, as it reads last (its status and its
    words: a confirmed finding reads as the terminal says it, not as when it was suspected)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["k"] != "finding":
            continue
        key = f"{r.get('kind')} {r.get('type')} {r.get('request', '')} {r.get('instance', '')}"
        if key in seen:
            seen[key].update({k: v for k, v in r.items() if k not in ("t", "k")})
        else:
            seen[key] = dict(r)
    return list(seen.values())


def _lanes_svg(lanes: dict[str, list[Life]], records: list[Record], findings: list[Record], scale: Scale) -> str:
    row = {name: i for i, name in enumerate(lanes)}
    services = sorted({str(r["n"]) for r in records if r["k"] == "fault"})
    height = AXIS + LANE * max(1, len(lanes) + len(services))
    out = [f'<svg viewBox="0 0 {WIDTH} {height}" role=img aria-label="instance timeline">', _axis(scale, height)]
    for name, lives in lanes.items():
        y = AXIS + row[name] * LANE
        out.append(f'<g class=lane data-name="{_e(name)}"><text class=lbl x=2 y={y + 15}>{_e(name)}</text>')
        out.extend(_life(life, y, scale) for life in lives)
        out.append("</g>")
    for i, service in enumerate(services):
        out.append(_service_lane(service, AXIS + (len(lanes) + i) * LANE, records, scale))
    for r in records:
        if r["k"] == "chaos" and r.get("n") in row:
            x, y = scale.x(float(r["t"])), AXIS + row[str(r["n"])] * LANE
            out.append(f'<path class=chaos data-action="{_e(r.get("action"))}" d="M{x} {y}l5 -0 -5 9 -5 -9z">'
                       f'<title>{_clock(r["t"])} chaos: {_e(r.get("action"))} {_e(r["n"])}</title></path>'
                       f'<text class=act x={x + 4} y={y + 8}>{ACTION_MARK.get(str(r.get("action")), "?")}</text>')
    for i, f in enumerate(findings):
        if f.get("n") in row:
            x, y = scale.x(float(f["t"])), AXIS + row[str(f["n"])] * LANE + LANE - 4
            out.append(f'<a href="#f{i}"><circle class=found id=m{i} cx={x} cy={y - 3} r=4>'
                       f'<title>{_e(f.get("line") or f.get("kind"))}</title></circle></a>')
    out.append("</svg>")
    return "".join(out)


def _service_lane(service: str, y: float, records: list[Record], scale: Scale) -> str:
    """A backing service (--chaos-backing): its faults as bars (with their parameters), resets as
    ticks, faults skipped (due while another ran) as hollow ticks."""
    out = [f'<g class=service data-name="{_e(service)}"><text class=lbl x=2 y={y + 15}>{_e(service)}</text>']
    for r in records:
        if r["k"] not in ("fault", "skip") or r.get("n") != service:
            continue
        x0 = scale.x(float(r["t"]))
        if r["k"] == "skip":
            out.append(f'<rect class=skip data-action="{_e(r.get("action"))}" x={x0} y={y + 4} width=2 height=12>'
                       f'<title>{_clock(r["t"])} {_e(r.get("action"))} skipped: under {_e(r.get("during"))}</title></rect>')
            continue
        width = max(2.0, scale.x(float(r["t"]) + float(r.get("seconds", 0))) - x0)
        params = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("t", "k", "n", "action"))
        out.append(f'<rect class=fault data-action="{_e(r.get("action"))}" x={x0} y={y + 4} width={width} '
                   f'height=12><title>{_clock(r["t"])} {_e(r.get("action"))} {_e(service)}: {_e(params)}</title></rect>')
    return "".join(out) + "</g>"


def _life(life: Life, y: float, scale: Scale) -> str:
    end = life.end if life.end is not None else scale.t0 + scale.span
    x0, x1 = scale.x(life.start), scale.x(end)
    tip = f"pid {life.pid}: {_clock(life.start)}-{_clock(end)}"
    out = [f'<rect class=life x={x0} y={y + 4} width={max(0.5, x1 - x0)} height=12><title>{tip}</title></rect>']
    if life.ready is not None:
        xr = scale.x(life.ready)
        out.append(f'<rect class=ready x={xr} y={y + 4} width={max(0.5, x1 - xr)} height=12></rect>')
    for at, seconds in life.pauses:
        xp = scale.x(at)
        out.append(f'<rect class=paused x={xp} y={y + 4} width={max(0.5, scale.x(at + seconds) - xp)} height=12></rect>')
    if life.end is not None:
        crashed = not life.asked and life.code != 0
        out.append(f'<rect class={"crash" if crashed else "exit"} x={x1 - 1} y={y + 2} width=2 height=16>'
                   f'<title>{_clock(end)} exit {life.code}{" (not asked)" if crashed else ""}</title></rect>')
    return "".join(out)


def _axis(scale: Scale, height: int) -> str:
    out = []
    for s in scale.ticks():
        x = scale.x(scale.t0 + s)
        label = f"{int(s) // 60}:{int(s) % 60:02d}"
        out.append(f'<line class=tick x1={x} x2={x} y1=14 y2={height} stroke=#eee />'
                   f'<text class=lbl x={x} y=11 text-anchor=middle>{label}</text>')
    return "".join(out)


def _requests_svg(records: list[Record], scale: Scale) -> str:
    per: dict[int, dict[str, int]] = {}
    for r in records:
        if r["k"] == "req":
            counts = per.setdefault(int(r["sec"]), {})
            for key, cls in (("2xx", "ok"), ("3xx", "ok"), ("4xx", "c4"), ("5xx", "c5"), ("503", "u")):
                counts[cls] = counts.get(cls, 0) + int(r.get(key, 0))
    if not per:
        return "<p>No requests went through the router.</p>"
    top = max(sum(c.values()) for c in per.values())
    paths: dict[str, list[str]] = {cls: [] for cls, _ in CLASSES}
    width = max(0.6, scale.x(scale.t0 + 1) - scale.x(scale.t0) - 0.2)
    for sec, counts in sorted(per.items()):
        x, base = scale.x(sec), float(BARS)
        for cls, _ in CLASSES:
            h = round(BARS * counts.get(cls, 0) / top, 1)
            if h:
                base -= h
                paths[cls].append(f"M{x} {round(base, 1)}h{round(width, 1)}v{h}h-{round(width, 1)}z")
    body = "".join(f'<path class={cls} data-class={cls} d="{"".join(d)}"></path>' for cls, d in paths.items() if d)
    height = AXIS + BARS + 4  # the lanes' time axis above the bars: the same x for the same moment
    return (f'<svg viewBox="0 0 {WIDTH} {height}" role=img aria-label="requests per second">'
            f'{_axis(scale, height)}<g transform="translate(0 {AXIS})"><text class=lbl x=2 y=12>{top}/s</text>'
            f'<text class=lbl x=2 y={BARS}>0</text>{body}</g></svg>'
            + '<p class=key>' + "".join(f"<span><i class={c}></i>{t}</span>"
                                        for c, t in CLASSES) + "</p>")


KEY = (("life", "running"), ("ready", "ready"), ("paused", "paused"), ("exit", "exit asked for"),
       ("crash", "exit not asked for"), ("fault", "backing fault"), ("skip", "backing fault skipped"),
       ("found", "finding"))


def _key() -> str:
    """Every mark the lanes use; chaos by its letter (K kill, R restart, M relocate, P pause)."""
    marks = "".join(f'<span><svg viewBox="0 0 10 10" style="display:inline;width:10px;height:10px">'
                    f'<rect class={c} width=10 height=10></rect></svg> {t}</span>' for c, t in KEY)
    chaos = "".join(f'<span><b class=act style="font-size:11px">{m}</b> chaos: {a}</span>'
                    for a, m in ACTION_MARK.items())
    return f"<p class=key>{marks}{chaos}</p>"


def _findings_html(findings: list[Record], t0: float, report: Mapping[str, Any]) -> str:
    if not findings:
        return "<p>No hidden local state found in this session.</p>"
    evidence = {f"{s.get('kind')} {s.get('type')} {s.get('request')}": s.get("evidence", [])
                for s in report.get("state", []) if isinstance(s, Mapping)}
    out = []
    for i, f in enumerate(findings):
        if f.get("kind") == "files":
            what = ", ".join(list(f.get("created", ())) + list(f.get("changed", ())))[:400]
            text = f"{_e(f.get('n'))} left files in its directory: {_e(what)}"
            fix = "keep files in a backing service (object storage, a database), not on the local disk"
        else:
            text, fix = _e(f.get("line")), _e(f.get("fix"))
        seen = evidence.get(f"{f.get('kind')} {f.get('type')} {f.get('request')}", [])
        proof = "; ".join(f"{_e(e[1])} answered {_e(e[2])}" for e in seen[:6]
                          if isinstance(e, list) and len(e) == 3)
        out.append(f'<div class=finding id=f{i}><b>{_e(f.get("kind"))}</b> [{_e(f.get("status", "confirmed"))}] '
                   f'<a href="#m{i}">at +{float(f["t"]) - t0:.1f}s</a> on {_e(f.get("n", f.get("type")))}: {text}'
                   + (f"<br>evidence: {proof}" if proof else "")
                   + (f"<br>rule: {_e(f.get('rule'))}" if f.get("rule") else "") + f"<br>fix: {fix}</div>")
    return "".join(out)


def _disposability(report: Mapping[str, Any]) -> str:
    rows = report.get("disposability") or {}
    if not rows:
        return "<p>No instance became ready or was stopped on request.</p>"
    cells = "".join(f"<tr><td>{_e(t)}</td><td>{_secs(d.get('ready_median'))}</td><td>{_secs(d.get('ready_max'))}</td>"
                    f"<td>{_secs(d.get('stopped_median'))}</td><td>{_secs(d.get('stopped_max'))}</td></tr>"
                    for t, d in rows.items())
    return ("<table><tr><th>type</th><th>ready (median)</th><th>ready (max)</th><th>stop (median)</th>"
            f"<th>stop (max)</th></tr>{cells}</table>")


def _meta(meta: Mapping[str, Any], t0: float, t1: float) -> str:
    replay = meta.get("replay")
    lines = [f"started {_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t0)))}, {t1 - t0:.1f}s shown",
             f"app root <code>{_e(meta.get('root', ''))}</code>",
             f"command <code>{_e(' '.join(map(str, meta.get('argv', []))))}</code>"]
    if replay:
        lines.append(f"chaos seed {_e(meta.get('seed'))}; replay it with <code>{_e(replay)}</code>")
    return "<p class=meta>" + "<br>".join(lines) + "</p>"


def _secs(value: object) -> str:
    return f"{float(value):.2f}s" if isinstance(value, (int, float)) else "-"


def _clock(t: object) -> str:
    return clock(float(t))  # type: ignore[arg-type]


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)
