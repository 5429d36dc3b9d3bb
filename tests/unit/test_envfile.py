import pytest
from hypothesis import given
from hypothesis import strategies as st

from procrun.project.envfile import parse
from procrun.errors import ConfigError


def test_values_quotes_comments_and_escapes():
    text = ('# comment\nA=1\nB="two words"\nC=\'single $X\'\nexport D=exported\n'
            'E="line\\nbreak"\n\nF=x # trailing comment\nG=\n')
    assert parse(text) == {"A": "1", "B": "two words", "C": "single $X", "D": "exported",
                           "E": "line\nbreak", "F": "x", "G": ""}


@pytest.mark.parametrize("text, line", [
    ("A=1\nB='unterminated\n", 2),
    ("A=1\nJUSTAWORD\n", 2),
    ("1X=2\n", 1),
])
def test_bad_lines_name_their_line(text, line):
    with pytest.raises(ConfigError) as err:
        parse(text, "app.env")
    assert err.value.line == line and str(err.value).startswith(f"app.env:{line}: ")


keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k != "export")
values = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85"), max_size=20)


@given(st.lists(st.tuples(keys, values, st.sampled_from(["", "'", '"'])), max_size=6, unique_by=lambda t: t[0]))
def test_same_result_as_honcho_for_assignments(items):
    """Differential test: every line honcho understands gives honcho's value.

    (Where honcho drops a line, e.g. ``A=``, procrun sets A to "" like foreman.)
    """
    from honcho.environ import parse as honcho_parse
    lines = []
    for key, value, quote in items:
        if quote:
            value = value.replace(quote, "").replace("\\", "")
        lines.append(f"{key}={quote}{value}{quote}")
    text = "\n".join(lines)
    try:
        ours = parse(text)
    except ConfigError:
        return  # a line honcho would have silently dropped or crashed on
    expected = honcho_parse(text)
    assert {k: v for k, v in ours.items() if k in expected} == expected
