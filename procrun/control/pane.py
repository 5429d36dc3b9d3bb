"""The logs pane of ``procrun top``: the last lines the session pushed (bounded), seen for the
selected instance, its type or everyone (``cycle``), following live unless a search holds a
match in view; a regex search whose matches are highlighted, n/N between them. Pure: lines
in, rows of (text, highlighted spans) out; top draws them."""

from __future__ import annotations

import re
from collections import deque

SCOPES = ("instance", "type", "all")
KEEP = 2000  # lines top keeps (the session sends at most its own bounded batch a push)


class Pane:
    def __init__(self, keep: int = KEEP) -> None:
        self.lines: deque[tuple[str, str]] = deque(maxlen=keep)  # (instance, text)
        self.scope = 0
        self.pattern: re.Pattern[str] | None = None
        self.match = -1  # index (in the visible lines) of the current match; -1: follow the end
        self.full = False  # the pane alone on the screen (Enter; Esc returns)
        self.dropped = 0  # lines the session did not send because top could not take them

    def add(self, lines: list[list[str]], dropped: int = 0) -> None:
        self.lines.extend((str(name), str(text)) for name, text in lines)
        self.dropped += dropped

    def cycle(self) -> str:
        self.scope = (self.scope + 1) % len(SCOPES)
        self.match = -1
        return SCOPES[self.scope]

    def visible(self, selected: str) -> list[tuple[str, str]]:
        if SCOPES[self.scope] == "all" or not selected:
            return list(self.lines)
        if SCOPES[self.scope] == "type":
            kind = selected.split(".", 1)[0]
            return [line for line in self.lines if line[0].split(".", 1)[0] == kind]
        return [line for line in self.lines if line[0] == selected]

    def search(self, text: str, selected: str) -> str:
        """A regular expression to find (empty: none); what to say about it."""
        if not text:
            self.pattern, self.match = None, -1
            return "search cleared"
        try:
            self.pattern = re.compile(text)
        except re.error as exc:
            return f"not a regular expression: {exc}"
        self.match = -1
        return self.step(selected, -1) or f"no line matches /{text}/"

    def step(self, selected: str, direction: int) -> str:
        """The next (1) or previous (-1) matching line; from the end when following."""
        if self.pattern is None:
            return "no search: / starts one"
        lines = self.visible(selected)
        hits = [i for i, (_, text) in enumerate(lines) if self.pattern.search(text)]
        if not hits:
            return ""
        if self.match < 0:
            self.match = hits[-1]
        else:
            later = [i for i in hits if (i > self.match if direction > 0 else i < self.match)]
            self.match = (later[0] if direction > 0 else later[-1]) if later else self.match
        return f"match {hits.index(self.match) + 1} of {len(hits)}"

    def rows(self, selected: str, height: int, width: int) -> list[tuple[str, list[tuple[int, int]]]]:
        """What fits ``height`` rows: the end of the visible lines, or the window around the current
        match; each row's text (cut to ``width``) and the spans the search highlights in it."""
        lines = self.visible(selected)
        end = len(lines) if self.match < 0 else min(len(lines), self.match + 1 + height // 2)
        start = max(0, end - height)
        out = []
        for name, text in lines[start:end]:
            row = f"{name} | {text}"[:max(0, width)]
            spans = []
            if self.pattern is not None:
                offset = len(name) + 3
                spans = [(m.start() + offset, m.end() + offset) for m in self.pattern.finditer(text)
                         if m.end() > m.start() and m.start() + offset < width]
            out.append((row, spans))
        return out

    def title(self, selected: str, width: int) -> str:
        where = {"instance": selected or "everyone", "type": (selected or "").split(".", 1)[0] or "everyone",
                 "all": "everyone"}[SCOPES[self.scope]]
        lost = f", {self.dropped:,} lines not sent" if self.dropped else ""
        text = f"── logs: {where}{lost} (l scope, / search, n/N, Enter full screen, Esc back) "
        return (text + "─" * width)[:max(0, width - 1)]
