"""``procrun top``: a live view of the running session, fed by a subscription on the control
socket (the session pushes its state when it changes, at least once a second), with keys to act.

curses from the standard library: it diffs the screen itself (no flicker), handles resize and
80x24, and needs no dependency; the view is one table and a few lines, no widgets needed.
"""

from __future__ import annotations

import json
import os
import select
import time

from procrun.control.client import Connection, Refused, request
from procrun.control.pane import Pane
from procrun.control.table import duration, size

KEYS = "↑↓ select  r restart  s stop  +/- scale  c chaos on/off  a attach  q quit"
COLUMNS = (("NAME", 12), ("STATE", 9), ("PID", 7), ("UPTIME", 8), ("RST", 4), ("CPU%", 6), ("RSS", 7),
           ("PORT", 6), ("READY", 6), ("REQ/S", 6), ("ERR", 4))
COLOURS = {"running": 1, "completed": 1, "starting": 2, "waiting": 2, "paused": 2, "backoff": 3, "stopping": 3, "exited": 3, "stopped": 3}


def run(root: str) -> int:
    import curses

    view = View(root)
    conn = Connection(root)
    try:
        reply = conn.request({"cmd": "subscribe"})
        if not reply.get("ok"):
            raise Refused(str(reply.get("error")))
        view.feed(conn.stream())
        curses.wrapper(view.loop, conn)
    finally:
        conn.close()
    return 0


class View:
    def __init__(self, root: str) -> None:
        self.root = root
        self.state: dict = {}
        self.buffer = b""
        self.selected = 0
        self.message = ""
        self.ended = False
        self.pane = Pane()

    def feed(self, data: bytes) -> None:
        """Lines of state from the session; the last whole one wins; output lines go to the pane."""
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                self.state = json.loads(line)
            except ValueError:
                continue
            self.pane.add(self.state.pop("lines", []), int(self.state.pop("dropped", 0)))

    def loop(self, screen, conn: Connection) -> None:  # type: ignore[no-untyped-def]
        import curses

        curses.curs_set(0)
        screen.nodelay(True)
        screen.keypad(True)
        if curses.has_colors():
            curses.use_default_colors()  # the terminal's own colours, not white on black
        if curses.has_colors() and not os.environ.get("NO_COLOR"):
            for pair, colour in ((1, curses.COLOR_GREEN), (2, curses.COLOR_YELLOW), (3, curses.COLOR_RED)):
                curses.init_pair(pair, colour, -1)
        self.colour = curses.has_colors() and not os.environ.get("NO_COLOR")
        self.draw(screen)
        while True:
            ready, _, _ = select.select([0] if self.ended else [conn.sock, 0], [], [], 1.0)
            if conn.sock in ready:
                data = conn.sock.recv(65536)
                if not data:
                    self.ended, self.message = True, "the session ended; q quits"
                self.feed(data)
            if not self.keys(screen, conn):
                return
            self.draw(screen)

    def keys(self, screen, conn: Connection) -> bool:  # type: ignore[no-untyped-def]
        import curses

        while (key := screen.getch()) != -1:
            if key in (ord("q"), ord("Q")):
                return False
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
            elif key in (curses.KEY_UP, ord("k")):
                self.selected = max(0, self.selected - 1)
            elif key in (curses.KEY_DOWN, ord("j")):
                self.selected = min(len(self.rows()) - 1, self.selected + 1)
            elif 0 <= key < 256 and chr(key) in "rs+-ca" and not self.ended:
                self.act(chr(key), screen)
            else:
                self.pane_key(key, screen)
        return True

    def pane_key(self, key: int, screen) -> None:  # type: ignore[no-untyped-def]
        """l cycles the logs' scope, / searches, n/N move between matches, Enter: full screen, Esc back."""
        import curses

        selected = self.selected_name()
        if key == ord("l"):
            self.message = f"logs of {self.pane.cycle()}"
        elif key == ord("/"):
            self.message = self.pane.search(prompt(screen, "/"), selected)
        elif key in (ord("n"), ord("N")):
            self.message = self.pane.step(selected, 1 if key == ord("n") else -1) or "no more matches"
        elif key in (10, 13, curses.KEY_ENTER):
            self.pane.full = True
        elif key == 27:
            self.pane.full, self.pane.match = False, -1

    def selected_name(self) -> str:
        rows = self.rows()
        return str(rows[min(self.selected, len(rows) - 1)]["name"]) if rows else ""

    def rows(self) -> list[dict]:
        return list(self.state.get("processes", []))

    def act(self, key: str, screen) -> None:  # type: ignore[no-untyped-def]
        rows = self.rows()
        if not rows:
            return
        proc = rows[min(self.selected, len(rows) - 1)]
        name, type_name = proc["name"], proc["type"]
        if key == "a":
            return self.attach(name, screen)
        count = self.state.get("formation", {}).get(type_name, 0)
        chaos_on = bool((self.state.get("chaos") or {}).get("enabled"))
        message = {"r": {"cmd": "restart", "targets": [name]}, "s": {"cmd": "stop", "targets": [name]},
                   "+": {"cmd": "scale", "formation": {type_name: count + 1}},
                   "-": {"cmd": "scale", "formation": {type_name: max(0, count - 1)}},
                   "c": {"cmd": "chaos", "op": "off" if chaos_on else "on"}}[key]
        try:
            reply = request(self.root, message)
        except Exception as exc:  # the session went away, or does not answer: say so in the view
            reply = {"ok": False, "error": str(exc)}
        words = {"r": f"restarting {name}", "s": f"stopping {name}", "+": f"scale {type_name}={count + 1}",
                 "-": f"scale {type_name}={max(0, count - 1)}", "c": f"chaos {'off' if chaos_on else 'on'}"}
        self.message = words[key] if reply.get("ok") else f"refused: {reply.get('error')}"

    def attach(self, name: str, screen) -> None:  # type: ignore[no-untyped-def]
        import curses

        from procrun.control import attach
        from procrun.errors import ProcrunError

        curses.endwin()
        try:
            attach.run(self.root, name)
            self.message = f"detached from {name}"
        except ProcrunError as exc:
            self.message = str(exc)
        screen.refresh()

    def draw(self, screen) -> None:  # type: ignore[no-untyped-def]
        import curses

        height, width = screen.getmaxyx()
        screen.erase()
        lines = [(self.header(width), 0), (KEYS, 0), ("", 0),
                 ("".join(title.ljust(w) for title, w in COLUMNS), curses.A_BOLD)]
        for i, proc in enumerate(self.rows()):
            attr = curses.A_REVERSE if i == self.selected else 0
            if self.colour:
                attr |= curses.color_pair(COLOURS.get(proc.get("state"), 0))
            lines.append((self.row(proc), attr))
        findings = self.state.get("findings") or []
        if findings:
            lines += [("", 0), ("findings:", curses.A_BOLD)] + [("  " + f, 0) for f in findings]
        lines += [("", 0), (self.message, 0)]
        if self.pane.full:
            lines = [(self.header(width), 0)]
        for y, (text, attr) in enumerate(lines[:height]):
            screen.addnstr(y, 0, text, max(0, width - 1), attr)
        self.draw_pane(screen, min(len(lines), height), height, width)
        screen.refresh()

    def draw_pane(self, screen, top: int, height: int, width: int) -> None:  # type: ignore[no-untyped-def]
        """The logs under the rest, in what height is left (none below 3 rows; all of it full screen)."""
        import curses

        if height - top < 3:
            return
        selected = self.selected_name()
        screen.addnstr(top, 0, self.pane.title(selected, width), max(0, width - 1), curses.A_BOLD)
        for y, (text, spans) in enumerate(self.pane.rows(selected, height - top - 1, width - 1), start=top + 1):
            screen.addnstr(y, 0, text, max(0, width - 1))
            for start, end in spans:
                if start < width - 1:
                    screen.chgat(y, start, min(end, width - 1) - start, curses.A_REVERSE)

    def header(self, width: int = 80) -> str:
        """One line that fits ``width`` (a 20-digit seed in 80 columns): the longest form that does."""
        chaos = self.state.get("chaos") or {}
        clock, count = time.strftime("%H:%M:%S"), len(self.rows())
        if chaos.get("enabled"):
            nxt = chaos.get("next_in")
            done = f"{chaos.get('disruptions', 0)} so far" + (f", next in {nxt:.0f}s" if nxt is not None else "")
            short = f"{chaos.get('disruptions', 0)} so far" + (f", next {nxt:.0f}s" if nxt is not None else "")
            forms = [f"procrun top  {clock}  {count} instances  chaos on (seed {chaos.get('seed')}, {done})",
                     f"{clock} {count} inst  chaos seed {chaos.get('seed')}: {short}",
                     f"{clock} {count} inst chaos seed {chaos.get('seed')}"]
        else:
            forms = [f"procrun top  {clock}  {count} instances  chaos off", f"{clock} {count} inst chaos off"]
        return next((form for form in forms if len(form) < width), forms[-1][:max(0, width - 1)])

    def row(self, proc: dict) -> str:
        rate = (self.state.get("rates") or {}).get(proc["name"]) or {}
        errors = sum(int(rate.get(k, 0)) for k in ("5xx", "503"))
        cells = [proc["name"], proc.get("state") or "", proc.get("pid"), duration(proc.get("uptime")),
                 proc.get("restarts"), _number(proc.get("cpu_percent"), "{:.1f}"), size(proc.get("rss")),
                 proc.get("port"), _number(proc.get("ready_after"), "{:.2f}"), rate.get("count", ""), errors or ""]
        return "".join(("" if c is None else str(c))[:w - 1].ljust(w) for c, (_, w) in zip(cells, COLUMNS))


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def prompt(screen, label: str) -> str:  # type: ignore[no-untyped-def]
    """A line typed at the bottom of the screen (Enter ends it, Esc gives up)."""
    import curses

    height, width = screen.getmaxyx()
    screen.nodelay(False)
    screen.move(height - 1, 0)
    screen.clrtoeol()
    screen.addnstr(height - 1, 0, label, max(0, width - 1))
    text = ""
    try:
        while (key := screen.getch()) not in (10, 13, curses.KEY_ENTER):
            if key == 27:
                return ""
            if key in (curses.KEY_BACKSPACE, 127, 8):
                text = text[:-1]
            elif 32 <= key < 0x110000 and key < 256:
                text += chr(key)
            screen.addnstr(height - 1, 0, (label + text + " ")[:max(0, width - 1)], max(0, width - 1))
    finally:
        screen.nodelay(True)
    return text
