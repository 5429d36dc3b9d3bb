from hypothesis import given
from hypothesis import strategies as st

from procrun.output import LineSplitter, Prefixer, Style, render


@given(st.lists(st.binary(max_size=50), max_size=30))
def test_splitter_yields_exactly_the_lines_of_the_stream(chunks):
    splitter = LineSplitter()
    lines = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    lines += splitter.flush()
    stream = b"".join(chunks)
    expected = stream.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert lines == expected


def test_long_line_is_not_split():
    splitter = LineSplitter()
    big = b"x" * (200 * 1024)
    assert splitter.feed(big[:70000]) == []
    assert splitter.feed(big[70000:] + b"\nnext") == [big]
    assert splitter.flush() == [b"next"]


def test_prefix_format_matches_honcho():
    style = Style(colour=False)
    style.widen(["web.1", "worker.10"])
    p = Prefixer(style, clock=lambda: 0)
    stamp = p.stamp()
    assert render(p.prefix("web.1", "36"), [b"a", b"\xff\xfe"]) == \
        f"{stamp} web.1     | a\n{stamp} web.1     | ".encode() + b"\xff\xfe\n"


def test_colour_and_no_prefix():
    p = Prefixer(Style(colour=True), clock=lambda: 0)
    assert p.prefix("web.1", "36").startswith(b"\033[0m\033[36m")
    assert render(Prefixer(Style(prefix=False)).prefix("web.1", "36"), [b"a", b"b"]) == b"a\nb\n"
