"""top's logs pane: scope, search, what fits the rows, bounded."""

from procrun.control.pane import Pane


def filled():
    pane = Pane(keep=100)
    pane.add([["web.1", f"GET /a {i}"] for i in range(3)] + [["web.2", "GET /b"], ["worker.1", "job done"]])
    return pane


def test_the_scope_cycles_instance_type_everyone():
    pane = filled()
    assert [n for n, _ in pane.visible("web.1")] == ["web.1"] * 3
    assert pane.cycle() == "type" and [n for n, _ in pane.visible("web.1")] == ["web.1"] * 3 + ["web.2"]
    assert pane.cycle() == "all" and len(pane.visible("web.1")) == 5
    assert pane.cycle() == "instance"


def test_search_highlights_and_moves_between_matches():
    pane = filled()
    pane.cycle(), pane.cycle()  # everyone
    assert pane.search("GET /a", "web.1") == "match 3 of 3"  # from the end
    assert pane.step("web.1", -1) == "match 2 of 3" and pane.step("web.1", 1) == "match 3 of 3"
    rows = pane.rows("web.1", 3, 80)
    text, spans = next(r for r in rows if r[0].endswith("GET /a 2"))
    assert text == "web.1 | GET /a 2" and spans == [(8, 14)]
    assert pane.search("(", "web.1").startswith("not a regular expression")
    assert pane.search("nothing like it", "web.1") == "no line matches /nothing like it/"


def test_the_rows_follow_the_end_and_fit_the_width():
    pane = filled()
    pane.cycle(), pane.cycle()
    rows = pane.rows("", 2, 12)
    assert [r[0] for r in rows] == ["web.2 | GET ", "worker.1 | j"]  # the last two, cut to the width


def test_the_pane_keeps_a_bounded_number_of_lines_and_says_what_was_not_sent():
    pane = Pane(keep=10)
    pane.add([["web.1", str(i)] for i in range(50)], dropped=7)
    assert len(pane.lines) == 10 and pane.dropped == 7
    assert "7 lines not sent" in pane.title("web.1", 120)
