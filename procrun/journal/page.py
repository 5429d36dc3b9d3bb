"""Writing a session's timeline page (``procrun report --html``, and at the end of a chaos session)."""

from __future__ import annotations

import os
from typing import Any

from procrun import statedir
from procrun.journal.read import Reader, meta, session_dir
from procrun.journal.timeline import render

PAGE = "report.html"


def write_page(directory: str, report: dict[str, Any], path: str | None = None) -> str:
    """Render the session in ``directory``; write it atomically to ``path`` (default: beside the journal)."""
    reader = Reader(directory)
    records = list(reader.records())
    reader.finish()
    target = os.path.abspath(path or os.path.join(directory, PAGE))
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", errors="replace") as f:  # (a path that is not UTF-8: shown replaced)
        f.write(render(meta(directory), records, report))
    os.replace(tmp, target)
    return target


def file_url(path: str) -> str:
    """A ``file://`` link a terminal and a browser open: the path percent-encoded (spaces, #, ?,
    names that are not UTF-8)."""
    from urllib.parse import quote

    return "file://" + quote(os.fsencode(path))


def page_for(root: str, ident: str | None, report: dict[str, Any], path: str | None) -> str:
    return write_page(session_dir(statedir.locate(root), ident), report, path)
