"""router.compare's pure parts: answers compared beyond the noise (diagnose/answers.py) and the
sampler's decisions and findings (diagnose/sampling.py)."""

import json
import random

import pytest

from procrun.diagnose.answers import CAP, Answer, compare, eligible
from procrun.diagnose.sampling import IN_FLIGHT, Sampler
from procrun.diagnose.report import Status

NAMES = ("web.1", "web.2")
MINE, OTHER = {"web.1", "41001", "4242"}, {"web.2", "41002", "4343"}


def js(doc, status=200):
    return Answer(status, "application/json", json.dumps(doc).encode())


def html(text, status=200):
    return Answer(status, "text/html", text.encode())


def test_a_cart_kept_in_one_process_is_named_by_its_path_never_its_values():
    a = js({"items": [{"name": "tea", "qty": 1}], "total": 1, "served_by": "web.1", "at": 1.5})
    a2 = js({"items": [{"name": "tea", "qty": 1}], "total": 1, "served_by": "web.1", "at": 1.6})
    b = js({"items": [], "total": 0, "served_by": "web.2", "at": 1.7})
    found = compare(a, a2, b, MINE, OTHER, NAMES)
    assert [d.words for d in found] == ["the list at `items` is empty on web.2, not on web.1",
                                        "`total` differs between web.1 and web.2"]
    assert not any("tea" in d.words or "1" in d.where for d in found)


def test_noise_and_the_instance_s_own_name_pid_and_port_are_not_differences():
    page = '<p>Served by {ps} (pid {pid}) on port {port} at {t}</p><input name=csrf value={tok}><h1>Shop</h1>'
    a = html(page.format(ps="web.1", pid=4242, port=41001, t="12:00:01.5", tok="aa11"))
    a2 = html(page.format(ps="web.1", pid=4242, port=41001, t="12:00:01.7", tok="bb22"))
    b = html(page.format(ps="web.2", pid=4343, port=41002, t="12:00:02.1", tok="cc33"))
    assert compare(a, a2, b, MINE, OTHER, NAMES) == []
    doc = {"instance": "web.1", "pid": 4242, "now": "2026-12-06T16:00:01Z", "nonce": "x1", "products": ["tea"]}
    other = {**doc, "instance": "web.2", "pid": 4343, "now": "2026-12-06T16:00:02Z", "nonce": "x3"}
    assert compare(js(doc), js({**doc, "now": "2026-12-06T16:00:01.5Z", "nonce": "x2"}), js(other), MINE, OTHER,
                   NAMES) == []


def test_a_counter_kept_per_process_differs_and_a_shared_one_is_noise():
    per_process = compare(html("<p id=visits>Visits: 7</p>"), html("<p id=visits>Visits: 8</p>"),
                          html("<p id=visits>Visits: 6</p>"), MINE, OTHER, NAMES)
    assert [d.words for d in per_process] == ["a count kept on its own by each instance (inside <p id=visits>)"]
    assert compare(html("<p id=visits>Visits: 7</p>"), html("<p id=visits>Visits: 8</p>"),
                   html("<p id=visits>Visits: 9</p>"), MINE, OTHER, NAMES) == []  # one shared counter
    assert [d.where for d in compare(js({"hits": 3}), js({"hits": 4}), js({"hits": 2}), MINE, OTHER, NAMES)] == ["hits"]
    assert compare(js({"hits": 3}), js({"hits": 4}), js({"hits": 5}), MINE, OTHER, NAMES) == []


def test_a_per_process_cache_of_a_value_the_app_changed_differs():
    found = compare(js({"price": "10.00", "currency": "EUR"}), js({"price": "10.00", "currency": "EUR"}),
                    js({"price": "12.00", "currency": "EUR"}), MINE, OTHER, NAMES)
    assert [(d.where, d.words) for d in found] == [("price", "`price` differs between web.1 and web.2")]
    text = compare(html("<ul id=flags><li>beta on</li></ul>"), html("<ul id=flags><li>beta on</li></ul>"),
                   html("<ul id=flags><li>beta off</li></ul>"), MINE, OTHER, NAMES)
    assert [d.where for d in text] == ["inside <ul id=flags>"]


def test_a_status_that_differs_is_left_to_the_status_rules():
    assert compare(js({"user": "ada"}), js({"user": "ada"}), js({"error": "login"}, 401), MINE, OTHER, NAMES) == []


def test_the_same_difference_at_another_position_is_the_same_place():
    a = compare(js({"items": [{"qty": 1}, {"qty": 2}]}), js({"items": [{"qty": 1}, {"qty": 2}]}),
                js({"items": [{"qty": 1}, {"qty": 3}]}), MINE, OTHER, NAMES)
    assert [d.where for d in a] == ["items[].qty"]


@pytest.mark.parametrize("status, headers, ok", [
    (200, [(b"Content-Type", b"application/json"), (b"Content-Length", b"20")], True),
    (200, [(b"Content-Type", b"text/html; charset=utf-8"), (b"Content-Length", b"2000")], True),
    (200, [(b"Content-Type", b"application/problem+json"), (b"Content-Length", b"20")], True),
    (304, [(b"Content-Type", b"text/html"), (b"Content-Length", b"0")], False),  # conditional GET
    (404, [(b"Content-Type", b"text/html"), (b"Content-Length", b"20")], False),
    (200, [(b"Content-Type", b"image/png"), (b"Content-Length", b"20")], False),
    (200, [(b"Content-Type", b"text/html"), (b"Content-Length", str(CAP + 1).encode())], False),
    (200, [(b"Content-Type", b"text/html"), (b"Transfer-Encoding", b"chunked")], False),  # a stream
    (200, [(b"Content-Type", b"text/event-stream"), (b"Content-Length", b"20")], False),
    (200, [(b"Content-Type", b"text/csv"), (b"Content-Length", b"20"),
           (b"Content-Disposition", b"attachment; filename=x.csv")], False),
    (200, [(b"Content-Type", b"text/html")], False),  # no length: read to the end (a stream)
])
def test_only_small_textual_answers_that_state_their_length_are_sampled(status, headers, ok):
    assert eligible(status, headers) is ok


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_sampler_takes_first_reads_and_reads_after_writes_at_most_once_a_second():
    clock = Clock()
    sampler = Sampler(0.0001, random.Random(1), clock)  # the rate alone would almost never sample
    assert sampler.wants("web", "GET /cart", "k1")  # first sight
    sampler.judged("web", "GET /cart", [], ("web.1", "web.2"), 200, 1.0)
    sampler.note("", True, "k1")  # the write that issued the client its session
    clock.now += 0.5
    assert not sampler.wants("web", "GET /cart", "k1")  # within a second of the last: later
    clock.now += 1
    assert not sampler.wants("web", "GET /cart", "k2")  # another client's read: the rate
    assert sampler.wants("web", "GET /cart", "k1")  # its first read after it wrote
    sampler.judged("web", "GET /cart", None, (), 0, 1.0)
    clock.now += 2
    assert not sampler.wants("web", "GET /cart", "k1")  # once per write and path


def test_differences_are_suspected_then_confirmed_and_a_confirmed_path_is_not_sampled_again():
    from procrun.diagnose.answers import Difference

    clock = Clock()
    sampler = Sampler(1.0, random.Random(1), clock)
    empty = Difference("items[]", "the list at `items` is empty on web.2, not on web.1")
    assert sampler.wants("web", "GET /cart", "")
    first = sampler.judged("web", "GET /cart", [empty], ("web.1", "web.2"), 200, 5.0)
    assert first.status is Status.SUSPECTED and first.as_report()["kind"] == "answers"
    assert first.as_report()["line"].startswith("GET /cart: the list at `items` is empty on web.2, not on web.1 — ")
    clock.now += 1
    assert sampler.wants("web", "GET /cart", "")
    assert sampler.judged("web", "GET /cart", [empty], ("web.3", "web.1"), 200, 6.0).status is Status.CONFIRMED
    clock.now += 5
    assert not sampler.wants("web", "GET /cart", "")
    assert sampler.in_flight == 0


def test_at_most_two_comparisons_run_at_once_and_rate_zero_is_off():
    sampler = Sampler(1.0, random.Random(1), Clock())
    assert [sampler.wants("web", f"GET /p{i}", "") for i in range(IN_FLIGHT + 1)] == [True] * IN_FLIGHT + [False]
    assert not Sampler(0.0, random.Random(1), Clock()).wants("web", "GET /x", "")


def test_data_another_client_changed_while_asking_is_not_a_difference_but_state_kept_apart_is():
    from procrun.diagnose.answers import around

    old, new = js({"price": "10.00"}), js({"price": "12.00"})
    assert around(old, old, new, new, MINE, OTHER, NAMES) == []  # the price changed after A2: everywhere
    assert [d.where for d in around(old, old, new, old, MINE, OTHER, NAMES)] == ["price"]  # this one kept its own
    visits = [html(f"<p id=visits>Visits: {n}</p>") for n in (7, 8, 3, 9)]  # A, A2, B, A3: a counter per process
    assert [d.where for d in around(*visits, MINE, OTHER, NAMES)] == ["inside <p id=visits>"]
    shared = [html(f"<p id=visits>Visits: {n}</p>") for n in (7, 8, 9, 10)]
    assert around(*shared, MINE, OTHER, NAMES) == []
