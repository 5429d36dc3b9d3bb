from hypothesis import given
from hypothesis import strategies as st

from procrun.supervise.output import CONTINUED, MAX_LINE, LineSplitter, Prefixer, Style, render


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


@given(st.lists(st.binary(max_size=40), max_size=30), st.integers(1, 16))
def test_splitter_bounds_long_lines_in_pieces(chunks, limit):
    """Lines over the limit come in pieces of exactly ``limit`` bytes plus the marker;
    joined again they are the stream's lines, and no piece exceeds the bound."""
    splitter = LineSplitter(limit)
    out = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    out += splitter.flush()
    rebuilt, current = [], b""
    for piece in out:
        if piece.endswith(CONTINUED):
            body = piece[:-len(CONTINUED)]
            assert len(body) == limit
            current += body
        else:
            assert len(piece) <= limit
            rebuilt.append(current + piece)
            current = b""
    assert current == b""
    expected = b"".join(chunks).split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert rebuilt == expected


def test_line_of_exactly_the_limit_is_whole_and_one_more_byte_is_split():
    splitter = LineSplitter(4)
    assert splitter.feed(b"abcd") == []
    assert splitter.feed(b"\n") == [b"abcd"]
    assert splitter.feed(b"abcde") == [b"abcd" + CONTINUED]
    assert splitter.feed(b"\n") == [b"e"]


def test_endless_line_without_newline_is_relayed_in_linear_time_and_bounded_memory():
    splitter = LineSplitter()
    chunk = b"x" * (256 * 1024)
    pieces = []
    for _ in range(160):  # 40 MiB: quadratic concatenation would take many seconds
        pieces += splitter.feed(chunk)
        assert len(splitter._partial) <= MAX_LINE
    assert len(pieces) == 39 and all(p == b"x" * MAX_LINE + CONTINUED for p in pieces)
