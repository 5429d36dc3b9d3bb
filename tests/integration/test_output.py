"""Relay correctness: every line whole, in order, none lost, under load."""

import re
import sys

from tests.integration.helpers import write_app

# Writes N numbered lines of varying length in randomly sized chunks, plus a
# 100 KiB line, a non-UTF-8 line and a last line without newline.
NOISY = r'''
import os, random, sys
tag, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(tag)
data = b"".join(b"%s %d %s\n" % (tag.encode(), i, b"y" * rnd.randrange(0, 200)) for i in range(n))
data += b"%s big " % tag.encode() + b"z" * 100_000 + b"\n" + tag.encode() + b" bin \xff\xfe\x80\n"
data += tag.encode() + b" last-without-newline"
while data:
    k = rnd.randrange(1, 9000)
    os.write(1, data[:k]); data = data[k:]
'''


def test_four_noisy_processes_lose_and_split_nothing(procrun, tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    n = 30_000
    write_app(tmp_path, "".join(f"p{i}: {sys.executable} noisy.py p{i} {n}\n" for i in range(4)))
    run = procrun("start", "--restart", "on-failure", "--no-color")
    assert run.wait(timeout=60) == 0
    prefix = re.compile(rb"^\d\d:\d\d:\d\d (p\d\.1|system) +\| (.*)\n?$", re.S)
    seen = {f"p{i}": [] for i in range(4)}
    for raw in run.lines:
        m = prefix.match(raw)
        assert m, raw[:100]
        if m.group(1) != b"system":
            tag = m.group(1)[:2].decode()
            assert m.group(2).startswith(tag.encode()), raw[:100]  # never another process's line
            seen[tag].append(m.group(2).rstrip(b"\n"))
    for tag, lines in seen.items():
        numbered = [l for l in lines if re.match(rb"p\d \d+ ", l)]
        assert [int(l.split()[1]) for l in numbered] == list(range(n))
        for l in numbered:
            assert re.fullmatch(rb"p\d \d+ y*", l)
        assert lines[-3] == tag.encode() + b" big " + b"z" * 100_000
        assert lines[-2] == tag.encode() + b" bin \xff\xfe\x80"
        assert lines[-1] == tag.encode() + b" last-without-newline"
        assert len(lines) == n + 3
