"""The journal's files (rotation, cap, torn and bad lines, a failing disk), `logs` filters on
crafted journals, the request tally, and the timeline page's content and size."""

import base64
import json
import os
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import UsageError
from procrun.journal import logs, timeline
from procrun.journal.read import Reader
from procrun.journal.store import Journal, new_session, prune, segment_name
from procrun.router.tally import Tally


def journal_dir(tmp_path, **meta):
    state = tmp_path / ".procrun"
    state.mkdir()
    (state / "session.lock").write_text("{}")  # where `logs` looks for the session's directory
    return new_session(str(state), {"pid": -1, "names": ["web.1"], **meta}, time.time())


def test_prune_keeps_the_current_session_and_the_newest_others(tmp_path):
    base = tmp_path / "sessions"
    names = ["20260101-000000-7", "20260102-000000-7", "20260103-000000-7", "20260104-000000-7"]
    for name in names:
        (base / name).mkdir(parents=True)
        (base / name / "meta.json").write_text("{}")
    current = base / "20250101-000000-9"  # its clock was behind: it sorts first, and stays
    current.mkdir()
    prune(str(current), keep=3)
    assert sorted(p.name for p in base.iterdir()) == ["20250101-000000-9", *names[-2:]]
    prune(str(current), keep=1)
    assert [p.name for p in base.iterdir()] == ["20250101-000000-9"]


def test_rotation_keeps_the_newest_records_under_the_cap(tmp_path):
    directory = journal_dir(tmp_path)
    journal = Journal(directory, cap_bytes=320 * 1024)
    for i in range(3000):
        journal.output("web.1", [f"line {i:05d} ".encode() + b"x" * 1000])
    journal.close()
    files = sorted(f for f in os.listdir(directory) if f.startswith("journal-"))
    assert sum(os.path.getsize(os.path.join(directory, f)) for f in files) <= 320 * 1024
    assert segment_name(1) not in files and len(files) >= 4
    reader = Reader(directory)
    numbers = [int(r["s"][5:10]) for r in reader.records()]
    assert reader.rotated and numbers[-1] == 2999
    assert numbers == list(range(numbers[0], 3000))  # contiguous: only whole old segments went


def test_logs_says_from_when_on_it_has_lines_after_rotation(tmp_path, capsys):
    directory = journal_dir(tmp_path)
    journal = Journal(directory, cap_bytes=320 * 1024)
    for i in range(3000):
        journal.output("web.1", [b"y" * 1000])
    journal.close()
    assert logs.run(str(tmp_path), [], False, None, None, False, None) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(r"procrun: the oldest lines were dropped \(journal size cap\); lines from "
                        r"\d\d:\d\d:\d\d on\n", err)


def test_bad_and_torn_lines_are_skipped_with_one_warning(tmp_path, capsys):
    directory = journal_dir(tmp_path)
    now = time.time()
    with open(os.path.join(directory, segment_name(1)), "w") as f:
        f.write(json.dumps({"t": now, "k": "out", "n": "web.1", "s": "good"}) + "\n")
        f.write("not json\n[1, 2]\n{\"k\": \"out\"}\n")
        f.write(json.dumps({"t": now, "k": "out", "n": "web.1", "s": "also good"}) + "\n")
        f.write('{"t": 1, "k": "out", "n": "web.1", "s": "torn by a SIG')
    assert logs.run(str(tmp_path), [], False, None, None, False, None) == 0
    out, err = capsys.readouterr()
    assert [line.split("| ")[1] for line in out.splitlines()] == ["good", "also good"]
    assert err == f"procrun: skipped 4 unreadable journal line(s) in {directory}\n"


def test_since_names_and_grep(tmp_path, capsys):
    directory = journal_dir(tmp_path)
    now = time.time()
    with open(os.path.join(directory, segment_name(1)), "w") as f:
        for name in ("web.1", "worker.1", "web.2"):
            f.write(json.dumps({"t": now - 3601, "k": "start", "n": name}) + "\n")
        for t, name, text in ((now - 3600, "web.1", "old"), (now - 5, "web.1", "new"), (now - 4, "worker.1", "job"),
                              (now - 3, "web.2", "new too")):
            f.write(json.dumps({"t": t, "k": "out", "n": name, "s": text}) + "\n")
    logs.run(str(tmp_path), [], False, "1m", None, False, None)
    assert [line.split("| ")[1] for line in capsys.readouterr().out.splitlines()] == ["new", "job", "new too"]
    logs.run(str(tmp_path), ["web"], False, None, "new", False, None)
    out = capsys.readouterr().out.splitlines()
    assert [line[9:] for line in out] == ["web.1    | new", "web.2    | new too"]  # as wide as worker.1, as in start


@pytest.mark.parametrize("text,seconds", [("90", 90), ("30s", 30), ("10m", 600), ("2h", 7200), ("1h30m", 5400),
                                          ("1d", 86400), ("0.5m", 30)])
def test_since_durations(text, seconds):
    assert logs.since_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10x", "m10", "-5m", "1h 30m"])
def test_bad_since_is_a_usage_error(text):
    with pytest.raises(UsageError, match="write it like 30s"):
        logs.since_seconds(text)


def test_a_failing_disk_turns_the_journal_off_once(tmp_path):
    errors = []
    journal = Journal(str(tmp_path), cap_bytes=10**6, on_error=errors.append)
    journal.event("start", {"n": "web.1"})
    os.close(journal._fd)
    journal._fd = os.open("/dev/full", os.O_WRONLY)  # the disk is full from now on
    journal.output("web.1", [b"lost"])
    journal.output("web.1", [b"lost too"])
    assert [e.errno for e in errors] == [28] and journal.error is not None
    assert [r["k"] for r in Reader(str(tmp_path)).records()] == ["start"]


def test_tally_per_instance_per_second():
    tally = Tally()
    for ms in range(1, 101):
        tally.add(100, "web.1", 200, False, ms / 1000)
    tally.add(100, "router", 503, True, 0.001)
    tally.add(100, "web.2", 503, False, 0.002)  # an app's own 503 is a 5xx
    tally.add(101, "web.1", 404, False, 0.003)
    first = tally.drain(before=101)
    assert first == [{"sec": 100, "n": "router", "count": 1, "503": 1, "p50": 1.0, "p99": 1.0},
                     {"sec": 100, "n": "web.1", "count": 100, "2xx": 100, "p50": 51.0, "p99": 100.0},
                     {"sec": 100, "n": "web.2", "count": 1, "5xx": 1, "p50": 2.0, "p99": 2.0}]
    assert tally and tally.drain() == [{"sec": 101, "n": "web.1", "count": 1, "4xx": 1, "p50": 3.0, "p99": 3.0}]
    assert not tally


def long_session(minutes=10, web=3, every=2.0):
    """A 10-minute chaos session: web=3, a disruption every 2 s, 50 requests a second."""
    t0, records, pids = 1_700_000_000.0, [], {}
    for i in range(1, web + 1):
        pids[i] = i
        records += [{"t": t0, "k": "start", "n": f"web.{i}", "pid": i}, {"t": t0 + 0.3, "k": "ready", "n": f"web.{i}"}]
    for step in range(int(minutes * 60 / every)):
        t, i = t0 + 1 + step * every, step % web + 1
        action = ("restart", "kill", "relocate", "pause")[step % 4]
        records.append({"t": t, "k": "chaos", "n": f"web.{i}", "action": action, "seconds": 1.5})
        if action != "pause":
            pids[i] += 10
            records += [{"t": t + 0.01, "k": "exit", "n": f"web.{i}", "code": -9, "asked": action != "kill"},
                        {"t": t + 0.02, "k": "start", "n": f"web.{i}", "pid": pids[i]},
                        {"t": t + 0.3, "k": "ready", "n": f"web.{i}"}]
    for sec in range(int(minutes * 60)):
        for i in range(1, web + 1):
            records.append({"t": t0 + sec + 1, "k": "req", "sec": int(t0) + sec, "n": f"web.{i}", "count": 17,
                            "2xx": 15, "5xx": 1, "4xx": 1, "p50": 1.0, "p99": 9.0})
    records.append({"t": t0 + 100, "k": "finding", "n": "web.2", "kind": "memory", "type": "web",
                    "status": "confirmed", "request": "GET /me", "line": "GET /me <b>forgot</b>",
                    "rule": "twelve-factor VI", "fix": "keep it in Redis"})
    return t0, sorted(records, key=lambda r: r["t"])


def test_the_page_of_a_ten_minute_session_is_small_and_complete():
    t0, records = long_session()
    page = timeline.render({"id": "x", "started": t0, "seed": 7, "replay": "procrun start --chaos --chaos-seed 7",
                            "argv": ["procrun", "start", "--chaos"], "root": "/app"}, records, {})
    assert len(page.encode()) < 500_000
    assert page.count("<g class=lane ") == 3
    assert page.count("<path class=chaos ") == 300
    assert page.count("<rect class=crash x=") == 75  # the kills: exits nobody asked for
    assert "procrun start --chaos --chaos-seed 7" in page
    assert "GET /me &lt;b&gt;forgot&lt;/b&gt;" in page and "<b>forgot" not in page
    assert 'href="#f0"' in page and "id=f0" in page  # marker and finding link each other
    assert "http://" not in page and "https://" not in page and "<script" not in page


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary().map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=5),
       st.text(min_size=1, max_size=8))
def test_any_output_is_kept_exactly(tmp_path_factory, lines, name):
    """Plain ASCII takes a fast path past the json module; quotes, backslashes, control
    bytes, UTF-8 and invalid UTF-8 take the slow one: both read back byte for byte."""
    directory = str(tmp_path_factory.mktemp("j"))
    journal = Journal(directory, cap_bytes=10**6)
    journal.output(name, lines)
    journal.output(name, [b"plain ascii", b"line two"])
    journal.close()
    records = list(Reader(directory).records())
    assert [r["n"] for r in records] == [name, name]
    data = base64.b64decode(records[0]["b"]) if "b" in records[0] else records[0]["s"].encode()
    assert data == b"\n".join(lines)
    assert records[1]["s"] == "plain ascii\nline two"


def test_backing_faults_get_a_lane_of_their_own():
    t0 = 1_700_000_000.0
    records = [{"t": t0, "k": "start", "n": "worker.1", "pid": 1},
               {"t": t0 + 2, "k": "fault", "n": "REDIS_URL", "action": "outage", "seconds": 3.0},
               {"t": t0 + 6, "k": "fault", "n": "REDIS_URL", "action": "reset", "seconds": 0.0}]
    page = timeline.render({"started": t0}, records, {})
    assert page.count('<g class=service data-name="REDIS_URL">') == 1
    assert 'class=fault data-action="outage"' in page and 'class=fault data-action="reset"' in page


def test_the_page_says_what_the_terminal_says_and_keys_every_mark():
    """Regression (#27): a confirmed finding kept its suspected text on the page; chaos markers
    needed hovering; some marks were not in the legend; the request chart had no time axis."""
    t0, records = long_session(minutes=1)
    records += [{"t": t0 + 5, "k": "finding", "n": "web.1", "kind": "memory", "type": "web", "status": "suspected",
                 "request": "GET /cart", "line": "GET /cart suspected words", "fix": "x"},
                {"t": t0 + 9, "k": "finding", "n": "web.1", "kind": "memory", "type": "web", "status": "confirmed",
                 "request": "GET /cart", "line": "GET /cart confirmed words", "fix": "x"},
                {"t": t0 + 20, "k": "skip", "n": "REDIS_URL", "action": "latency", "during": "outage"},
                {"t": t0 + 19, "k": "fault", "n": "REDIS_URL", "action": "outage", "seconds": 3.0}]
    page = timeline.render({"started": t0}, sorted(records, key=lambda r: r["t"]), {})
    assert "GET /cart confirmed words" in page and "suspected words" not in page
    for action, mark in timeline.ACTION_MARK.items():
        assert f'data-action="{action}"' in page and f"<text class=act" in page and f"chaos: {action}" in page
    for cls in ("life", "ready", "paused", "exit", "crash", "fault", "skip", "found"):
        used = f"class={cls} " in page.split("<h2>Requests")[0].split("</p>", 1)[1]
        assert not used or f"<rect class={cls} width=10" in page, cls  # every mark used is keyed
    chart = page.split("<h2>Requests")[1].split("<h2>")[0]
    assert "<line class=tick" in chart and "0:00" in chart  # the lanes' time axis
