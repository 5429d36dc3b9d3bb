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
