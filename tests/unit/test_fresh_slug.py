from procrun.fresh.slug import Diff, describe, diff, ignored


def test_diff_created_changed_deleted_and_ignores():
    before = {"app.py": ("file", 10, 1), "static": ("dir", 0, 0), "static/a.css": ("file", 5, 1),
              "old.txt": ("file", 1, 1)}
    after = {"app.py": ("file", 10, 2), "static": ("dir", 0, 0), "static/a.css": ("file", 5, 1),
             "uploads": ("dir", 0, 0), "uploads/a.png": ("file", 9, 3), "__pycache__/app.cpython-311.pyc":
             ("file", 1, 1), "lib/x.pyc": ("file", 1, 1), "logs/out.log": ("file", 1, 1)}
    found = diff(before, after, ignore=["logs"])
    assert found == Diff(created=("uploads/a.png",), changed=("app.py",), deleted=("old.txt",))
    assert not diff(before, before)


def test_ignore_patterns():
    assert ignored("a/__pycache__/x", ["__pycache__"])
    assert ignored("logs/today/x.log", ["logs/"])
    assert ignored("data/cache/x", ["data/cache"])
    assert not ignored("mylogs/x", ["logs"])


def test_describe_line():
    text = describe("web.2", 41.2, Diff(created=("uploads/a.png", "sessions/x")))
    assert text == "web.2 wrote uploads/a.png and sessions/x during its 41s life; the next instance will not see them"
    text = describe("web.1", 3, Diff(created=tuple(f"f{i}" for i in range(5)), deleted=("z",)))
    assert "wrote f0, f1, f2 and 2 more; deleted z" in text


def test_report_summary_and_json_round_trip():
    from procrun.diagnose.report import Event, Finding, Report, from_json
    report = Report(seed=7, scheduled=True, inspected=1)
    report.events.append(Event(1.0, "web.1", "relocate"))
    report.findings.append(Finding("web.1", "web", 3.0, 1.0, ("uploads/a",), (), ()))
    report.scratch["web"] = 2
    for s in (0.2, 0.1, 0.4):
        report.record("ready", "web", s)
    report.record("stopped", "web", 0.05)
    lines = report.summary()
    assert lines[0] == "chaos: 1 disruptions (1 relocate); replay with --chaos-seed 7"
    assert "disposability: web ready in 0.20s (max 0.40s), stops in 0.05s (max 0.05s)" in lines
    assert "  web: 1 time(s): created uploads/a (x1)" in lines
    assert "  web: 2 file(s) in TMPDIR (allowed scratch space)" in lines
    again = from_json(report.to_json())
    assert again.to_json() == report.to_json()


def test_summary_claims_only_what_the_session_did():
    """Regression: a manual `chaos now` offered a replay seed, and a session without fresh
    directories said 'hidden local state: none found'."""
    from procrun.diagnose.report import Event, Report
    manual = Report(seed=7)
    manual.events.append(Event(1.0, "web.1", "kill"))
    lines = manual.summary()
    assert lines[0] == "chaos: 1 disruptions (1 kill)"
    assert lines[-1].startswith("hidden local state: not checked: no instance stopped after running in a fresh")
    checked = Report(seed=7, scheduled=True, inspected=3)
    checked.events.append(Event(1.0, "web.1", "relocate"))
    assert checked.summary() == ["chaos: 1 disruptions (1 relocate); replay with --chaos-seed 7",
                                 "hidden local state: none found in 3 fresh directories"]


def test_generated_paths_are_grouped_and_allow_patterns_match():
    from procrun.diagnose.report import Finding, Report, allowed, pattern
    assert pattern("uploads/3f2a9c1e.txt") == pattern("uploads/77ab01c2.txt") == "uploads/<id>.txt"
    assert pattern("logs/app.log") == "logs/app.log"
    # temporary and generated names of real frameworks, each kind one pattern
    assert pattern("flask_session/tmpkj3vdefl.__wz_cache") == pattern("flask_session/tmp0a9zzq1x.__wz_cache")
    assert pattern("static/.webassets-cache/.3f2a9c1e0b") == pattern("static/.webassets-cache/x/y") == \
        "static/.webassets-cache/<...>"
    assert pattern("media/9b2f4c1e-8d7a-4e21-b3c0-1f2e3d4c5b6a.png") == "media/<id>.png"
    assert pattern("sessions/sess_k3j4h5g6f7d8") == pattern("sessions/sess_a1b2c3d4e5") == "sessions/<id>"
    assert pattern("templates/index.html") == "templates/index.html"  # words stay words
    assert pattern("static/css/app.css") == "static/css/app.css"
    report = Report()
    for name in ("3f2a9c1e", "77ab01c2", "0011aabb"):
        report.findings.append(Finding("web.1", "web", 1.0, 1.0, (f"uploads/{name}.txt",), (), ()))
    assert report.by_type()["web"]["files"] == {"created uploads/<id>.txt": 3}
    assert allowed(["GET /health", "uploads/*"], "memory", "GET /health", "/health")
    assert allowed(["ports"], "ports", "web.1") and not allowed(["uploads/*"], "files", "tmp/x")


def test_assets_built_at_run_time_get_their_own_advice():
    from procrun.diagnose.report import compiled_at_run_time

    assert compiled_at_run_time("static/.webassets-cache/abc") and compiled_at_run_time("public/packs/app.js")
    assert compiled_at_run_time("static/CACHE/css/out.css") and not compiled_at_run_time("uploads/a.txt")


def test_a_scan_that_runs_out_of_descriptors_raises_instead_of_reporting_deletions(tmp_path, monkeypatch):
    """Regression (#26): with descriptors exhausted, the stop-time scan skipped every folder it
    could not open and the report said the instance deleted .env, the Procfile and the code."""
    import errno
    import os

    import pytest

    from procrun.fresh import workdir

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Procfile").write_text("w: x\n")
    real = os.scandir

    def exhausted(path):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(workdir.os, "scandir", exhausted)
    with pytest.raises(OSError):
        workdir.scan(str(tmp_path / "app"))
    monkeypatch.setattr(workdir.os, "scandir", real)
    assert "Procfile" in workdir.scan(str(tmp_path / "app"))
