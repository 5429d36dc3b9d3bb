import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procrun.control.table import table
from procrun.control.protocol import COMMANDS, MAX_LINE, ProtocolError, Request, parse_request


def test_valid_requests():
    assert parse_request(b'{"cmd":"ps"}\n') == Request("ps")
    assert parse_request(b'{"cmd":"scale","formation":{"web":3,"worker":0}}') == \
        Request("scale", formation={"web": 3, "worker": 0})
    assert parse_request(b'{"cmd":"restart","targets":["web","worker.2"]}').targets == ("web", "worker.2")


@pytest.mark.parametrize("line, words", [
    (b"nope", "not JSON"), (b"\xff", "not JSON"), (b'"ps"', "JSON object"), (b"{}", "unknown command"),
    (b'{"cmd":"rm"}', "unknown command"), (b'{"cmd":"stop"}', "at least one"),
    (b'{"cmd":"stop","targets":"web"}', "list"), (b'{"cmd":"scale","formation":{"web":-1}}', "0 or more"),
    (b'{"cmd":"scale","formation":{"web":true}}', "0 or more"), (b'{"cmd":"scale","formation":[1]}', "formation"),
    (b" " * (MAX_LINE + 1), "larger than"),
])
def test_bad_requests(line, words):
    with pytest.raises(ProtocolError, match=words):
        parse_request(line)


def test_table():
    rows = [{"name": "web.1", "pid": 12, "state": "running", "uptime": 75.0, "restarts": 2, "port": 5000,
             "cpu_percent": 1.25, "rss": 3 * 1024 * 1024, "cwd": "/app", "ready_after": 0.25},
            {"name": "worker.1", "pid": None, "state": "exited", "uptime": None, "restarts": 0, "port": None,
             "cpu_percent": None, "rss": None, "cwd": "/app"}]
    lines = table(rows).splitlines()
    assert lines[1].split() == ["web.1", "12", "running", "1m15s", "2", "5000", "0.25s", "1.2%", "3.0M", "/app"]
    assert lines[2].split() == ["worker.1", "-", "exited", "-", "0", "-", "-", "-", "-", "/app"]


def test_deeply_nested_request_is_a_bad_request_not_a_crash():
    with pytest.raises(ProtocolError, match="bad request"):
        parse_request(b"[" * 60_000 + b"\n")


def test_deadline_must_be_a_number():
    assert parse_request(b'{"cmd":"ps","deadline":12.5}').deadline == 12.5
    for bad in (b'"soon"', b"true", b"NaN"):
        with pytest.raises(ProtocolError, match="deadline"):
            parse_request(b'{"cmd":"ps","deadline":' + bad + b"}")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)
_keys = st.sampled_from(["cmd", "targets", "formation", "op", "action", "deadline", "x"])
_messages = st.dictionaries(_keys, _json | st.sampled_from(["ps", "scale", "chaos", "stop", "now"]), max_size=6)


@given(st.one_of(st.binary(max_size=200), _messages.map(lambda m: json.dumps(m).encode())))
def test_any_request_bytes_give_a_request_or_a_protocol_error(data):
    try:
        request = parse_request(data)
    except ProtocolError as exc:
        assert str(exc)
    else:
        assert request.cmd in COMMANDS
