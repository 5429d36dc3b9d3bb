"""Instance-dependent answers: the same safe request answered differently by two instances of one
release, beyond what changes between two answers of the same instance. Pure.

The router asks the instance that answered the client twice (A, then A2), another instance once
(B), then the first once more (A3): ``around`` keeps what differs on both sides of B. What
differs between A and A2 is noise (timestamps, CSRF tokens, nonces), unless it is a number
that A2 counted up and B does not continue (a counter each process keeps). What names the
instance itself (its ``PS``/``DYNO`` name, pid, port) is masked before anything is compared.
JSON is compared by structure (the paths whose values differ), HTML and text by tokens. What
differs is said by where it is (a JSON path, the element around it), never by its values. A
status that differs is left to the status rules (``procrun.diagnose.memory``), which see it in
the traffic and name a session's cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from difflib import SequenceMatcher
from typing import Any, NamedTuple

CAP = 256 * 1024  # bytes: larger answers are never sampled
TEXTUAL = re.compile(rb"^\s*(application/([\w.+-]*\+)?json|text/(html|plain|xml|csv)|application/(xhtml\+)?xml)\b", re.I)
_TOKEN = re.compile(r"<[^>]*>|[\w.:/-]+|[^\s\w<]")
MASK = "<instance>"
_INT = re.compile(r"^-?\d{1,15}$")
_NAMED = re.compile(r"""^<([a-zA-Z][\w-]*)[^>]*?\b(id|class|name)\s*=\s*["']?([^"'\s>]+)""")
_TAG = re.compile(r"^<([a-zA-Z][\w-]*)")


class Answer(NamedTuple):
    status: int
    ctype: str  # the content type, without parameters
    body: bytes


def eligible(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """An answer that may be sampled: a 2xx with a textual type, a length it states of at most
    ``CAP``, not a download (attachment) nor a stream (SSE, chunked)."""
    if not 200 <= status < 300 or status == 204:
        return False
    length, textual = None, False
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            length = int(value) if value.strip().isdigit() else None
        elif key == b"content-type":
            textual = TEXTUAL.match(value) is not None and b"event-stream" not in value.lower()
        elif key == b"content-disposition" and b"attachment" in value.lower():
            return False
        elif key == b"transfer-encoding":
            return False
    return textual and length is not None and length <= CAP


class Difference(NamedTuple):
    """Where two instances' answers differ: ``where`` is stable across samples (the key that
    confirms), ``words`` says it for a person (never the values)."""

    where: str
    words: str


def compare(a: Answer, a2: Answer, b: Answer, mine: Iterable[str], other: Iterable[str],
            names: tuple[str, str]) -> list[Difference]:
    """What differs between A (this instance) and B (another), beyond A-versus-A2 noise. ``mine``
    and ``other``: what identifies each instance in a body (its name, pid, port); ``names``: the
    two instances' names, for the words."""
    if a.status != b.status or a2.status != a.status:
        return []  # an answer that fails on one instance: the status rules' (they name the session's cause)
    if a.ctype != b.ctype:
        return [Difference("type", f"content type {a.ctype} on {names[0]}, {b.ctype} on {names[1]}")]
    masks = [_mask(ids) for ids in (mine, mine, other)]
    if "json" in a.ctype:
        try:
            docs = [_json_masked(json.loads(x.body), m) for x, m in zip((a, a2, b), masks)]
        except ValueError:
            pass
        else:
            return [] if docs[0] == docs[2] else _json(*docs, names)
    texts = [m(x.body.decode("utf-8", "replace")) for x, m in zip((a, a2, b), masks)]
    return [] if texts[0] == texts[2] else _tokens(*texts, names)


def around(a: Answer, a2: Answer, b: Answer, a3: Answer, mine: Iterable[str], other: Iterable[str],
           names: tuple[str, str]) -> list[Difference]:
    """What differs between this instance's answers before (A, A2) and after (A3) another's (B),
    and B: a place counts only when B differs from both sides, so data another client changed
    while the answers were asked for (A2 and A3 differ there, as B and A do) is not state kept
    apart."""
    mine = tuple(mine)
    after = {d.where for d in compare(a2, a3, b, mine, other, names)}
    return [d for d in compare(a, a2, b, mine, other, names) if d.where in after]


def _mask(ids: Iterable[str]) -> Callable[[str], str]:
    """What names the instance (its name, pid, port), replaced in a text by one placeholder."""
    values = sorted({i for i in ids if i}, key=len, reverse=True)
    if not values:
        return lambda text: text
    found = re.compile(rf"(?<![\w.])(?:{'|'.join(map(re.escape, values))})(?!\w)")
    return lambda text: found.sub(MASK, text)


def _json_masked(doc: Any, mask: Callable[[str], str]) -> Any:
    """A JSON document with the instance's name, pid and port masked in its strings and numbers."""
    if isinstance(doc, dict):
        return {k: _json_masked(v, mask) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_json_masked(v, mask) for v in doc]
    if isinstance(doc, str):
        return mask(doc)
    if isinstance(doc, int) and not isinstance(doc, bool) and mask(str(doc)) == MASK:
        return MASK
    return doc


def _counted(a: Any, a2: Any, b: Any) -> bool:
    """Noise that is a counter kept apart: A2 counted up from A, and B does not continue it (a
    shared counter would be past A2 by now)."""
    numbers = [_number(x) for x in (a, a2, b)]
    if None in numbers:
        return False
    na, na2, nb = numbers
    return na2 > na and nb <= na2  # type: ignore[operator]


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    return None


# -- JSON: by structure

def _flat(doc: Any, path: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every leaf by its path (``items[0].qty``); lists also by their own path, as their length."""
    out = {} if out is None else out
    if isinstance(doc, dict):
        if not doc:
            out[path or "$"] = {}
        for key, value in doc.items():
            _flat(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(doc, list):
        out[(path or "$") + "[]"] = len(doc)
        for i, value in enumerate(doc):
            _flat(value, f"{path}[{i}]", out)
    else:
        out[path or "$"] = doc
    return out


def _json(a: Any, a2: Any, b: Any, names: tuple[str, str]) -> list[Difference]:
    fa, fa2, fb = _flat(a), _flat(a2), _flat(b)
    noise = {p for p in fa.keys() | fa2.keys() if fa.get(p) != fa2.get(p) and not _counted(fa.get(p), fa2.get(p),
                                                                                            fb.get(p))}
    found: dict[str, Difference] = {}
    lists = {p[:-2] for p in fa.keys() | fb.keys() if p.endswith("[]") and p not in noise and fa.get(p) != fb.get(p)}
    for p in lists:
        shown = p if p != "$" else "the answer"
        na, nb = fa.get(p + "[]"), fb.get(p + "[]")
        if nb == 0 or nb is None:
            words = f"the list at `{shown}` is {'empty' if nb == 0 else 'missing'} on {names[1]}, not on {names[0]}"
        elif na == 0 or na is None:
            words = f"the list at `{shown}` is {'empty' if na == 0 else 'missing'} on {names[0]}, not on {names[1]}"
        else:
            words = f"the list at `{shown}` has a different length on {names[0]} and {names[1]}"
        found[_general(p) + "[]"] = Difference(_general(p) + "[]", words)
    for p in sorted(fa.keys() | fb.keys()):
        if p in noise or p.endswith("[]") or fa.get(p) == fb.get(p) or any(_inside(p, lst) for lst in lists):
            continue
        where = _general(p)
        if where in found:
            continue
        counted = p in fa2 and _counted(fa.get(p), fa2.get(p), fb.get(p))
        what = "counts on its own on each instance" if counted else \
            f"is missing on {names[1]}" if p not in fb else f"is missing on {names[0]}" if p not in fa else \
            f"differs between {names[0]} and {names[1]}"
        found[where] = Difference(where, f"`{where}` {what}")
    return list(found.values())


def _inside(path: str, lst: str) -> bool:
    return lst == "$" and path.startswith("[") or path.startswith(lst + "[")


def _general(path: str) -> str:
    """``items[3].qty`` -> ``items[].qty``: the same difference whatever the position."""
    return re.sub(r"\[\d+\]", "[]", path)


# -- HTML and text: by tokens

def _tokens(a: str, a2: str, b: str, names: tuple[str, str]) -> list[Difference]:
    ta, ta2, tb = _TOKEN.findall(a), _TOKEN.findall(a2), _TOKEN.findall(b)
    noise: dict[int, str | None] = {}  # A's token index -> A2's token there (one for one), or None
    for op, i1, i2, j1, j2 in SequenceMatcher(None, ta, ta2, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        for k in range(i1, max(i2, i1 + 1)):
            noise[k] = ta2[j1 + k - i1] if op == "replace" and i2 - i1 == j2 - j1 else None
    found: dict[str, Difference] = {}
    for op, i1, i2, j1, j2 in SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        span = range(i1, max(i2, i1 + 1))
        counted = op == "replace" and i2 - i1 == j2 - j1 and any(
            k in noise and _counted(ta[k], noise[k], tb[j1 + k - i1]) for k in span)
        if all(k in noise for k in span) and not counted:
            continue
        where = _around(ta, i1)
        what = "a count kept on its own by each instance" if counted else \
            f"content on {names[0]} missing on {names[1]}" if op == "delete" else \
            f"content on {names[1]} missing on {names[0]}" if op == "insert" else \
            f"content differs between {names[0]} and {names[1]}"
        found.setdefault(where, Difference(where, f"{what} ({where})"))
    return list(found.values())


def _around(tokens: list[str], index: int) -> str:
    """Where a token is: inside the nearest element named by id, class or name, else the nearest
    element; in plain text, the line's first word before it."""
    for token in reversed(tokens[:index]):
        named = _NAMED.match(token)
        if named:
            return f"inside <{named.group(1).lower()} {named.group(2).lower()}={named.group(3)}>"
    for token in reversed(tokens[:index]):
        tag = _TAG.match(token)
        if tag:
            return f"inside <{tag.group(1).lower()}>"
    return f"after word {index}" if index else "at the start"
