"""Fuzz: whatever a Procfile, .env or formation says, the answer is data or one located error."""

from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.project import envfile, procfile
from procrun.errors import ConfigError, UsageError
from procrun.project.plan import parse_formation, parse_port

texts = st.lists(st.sampled_from(list("aweb_-.:=#'\"\\$ \t\n\r\x00\xe9=01") + ["export ", "\\n"]),
                 max_size=60).map("".join)


@settings(max_examples=300)
@given(texts)
def test_procfile_text_gives_a_procfile_or_a_config_error_with_its_line(text):
    try:
        pf = procfile.parse(text, "Procfile")
    except ConfigError as exc:
        assert exc.path == "Procfile"
        assert (exc.line or 0) >= 1 or exc.problem == "no process types defined"
    else:
        assert len(set(pf.names)) == len(pf.names)
        assert all("\0" not in t.command for t in pf.types)  # it could never be exec'd


@settings(max_examples=300)
@given(texts)
def test_env_text_gives_values_or_a_config_error_with_its_line(text):
    try:
        values = envfile.parse(text, ".env")
    except ConfigError as exc:
        assert exc.path == ".env" and exc.line is not None and exc.line >= 1
    else:
        assert all(isinstance(k, str) and isinstance(v, str) and "\0" not in v for k, v in values.items())


@given(st.text(max_size=30))
def test_formation_and_port_text_give_values_or_a_usage_error(text):
    for parse in (parse_formation, parse_port):
        try:
            parse(text)
        except UsageError as exc:
            assert str(exc)
