import pytest

from procrun.errors import ConfigError
from procrun.project.procfile import parse


def test_types_in_order_with_comments_and_blanks():
    pf = parse("# app\n\nweb: python app.py --port $PORT\r\nworker:  celery -A x  \n")
    assert pf.names == ("web", "worker")
    assert pf.get("web").command == "python app.py --port $PORT"
    assert pf.get("worker").command == "celery -A x"
    assert pf.get("worker").line == 4


def test_command_may_contain_colons():
    assert parse("web: echo a:b http://x").get("web").command == "echo a:b http://x"


@pytest.mark.parametrize("text, line, words", [
    ("web: ok\nthis is not a process\n", 2, "expected 'name: command'"),
    ("web.1: x\n", 1, "is not valid"),
    ("web: a\nweb: b\n", 2, "already defined on line 1"),
    ("\n\nweb:   \n", 3, "has no command"),
    ("we b: x\n", 1, "expected 'name: command'"),
])
def test_bad_lines_are_errors_with_line_numbers(text, line, words):
    with pytest.raises(ConfigError) as err:
        parse(text, "Procfile")
    assert err.value.line == line
    assert words in str(err.value)
    assert str(err.value).startswith(f"Procfile:{line}: ")
    assert "fix:" in str(err.value)


def test_empty_procfile_is_an_error():
    with pytest.raises(ConfigError, match="no process types"):
        parse("# nothing\n")


def test_agrees_with_honcho_on_valid_files():
    from honcho.environ import parse_procfile
    text = "web: gunicorn app:app -b 0.0.0.0:$PORT\nworker_2: python -m w\nclock-x: sleep 1\n"
    assert dict(parse_procfile(text).processes) == {t.name: t.command for t in parse(text).types}


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    """Regression (#27): a Procfile, .env or procrun.yaml saved by a Windows editor begins with a
    UTF-8 byte order mark, and the first type was named '\\ufeffw' (an error)."""
    from procrun.project import config, envfile
    from procrun.project.files import read_text

    for name, text in (("Procfile", "w: echo hi\n"), (".env", "A=1\n"), ("procrun.yaml", "timeout: 3\n")):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert parse(read_text(str(tmp_path / "Procfile"), "Procfile")).names == ("w",)
    assert envfile.parse(read_text(str(tmp_path / ".env"), "env file")) == {"A": "1"}
    assert config.parse(read_text(str(tmp_path / "procrun.yaml"), "procrun.yaml"))[0]["timeout"] == 3


@pytest.mark.parametrize("inside", ["\x0c", "\u2028", "\u2029", "\x1c", "\x85", "\x0b"])
def test_only_real_line_ends_count_in_error_line_numbers(inside):
    """Regression (#27): a form feed or U+2028 inside a line counted as a line break, so an error
    in a two-line file named line 3 (and a one-line file's error was at Procfile:2)."""
    from procrun.project import envfile

    with pytest.raises(ConfigError) as caught:
        parse(f"w: echo {inside} hi\nbad line\n")
    assert caught.value.line == 2
    with pytest.raises(ConfigError) as caught:
        envfile.parse(f"A=1{inside}\nB C\n")
    assert caught.value.line == 2
    assert parse("w: echo hi\r\nv: echo ho\r\n").names == ("w", "v")  # CRLF is a line end
