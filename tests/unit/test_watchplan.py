"""Watch restart guard: a file that changes at every start must not restart a type forever."""

from procrun.watch.plan import RestartGuard


def test_sixth_restart_within_a_minute_is_suspended_naming_the_path():
    guard = RestartGuard()
    for i in range(5):
        assert guard.allow("web", {"out.txt"}, now=float(i)) == (True, None)
    allowed, why = guard.allow("web", {"out.txt"}, now=5.0)
    assert not allowed
    assert why.startswith("web restarted 5 times in 60s for changes to out.txt, which keeps changing")
    assert guard.allow("web", {"out.txt"}, now=6.0) == (False, None)  # said once
    assert guard.allow("worker", {"out.txt"}, now=6.0) == (True, None)  # per type


def test_a_change_elsewhere_or_a_manual_restart_resumes():
    guard = RestartGuard(limit=2)
    for now in (0.0, 1.0, 2.0):
        guard.allow("web", {"log.txt"}, now)
    assert guard.allow("web", {"log.txt"}, 3.0) == (False, None)
    assert guard.allow("web", {"app.py"}, 4.0) == (True, None)
    guard.allow("web", {"log.txt"}, 5.0)
    assert guard.allow("web", {"log.txt"}, 6.0)[0] is False
    guard.resume(["web"])
    assert guard.allow("web", {"log.txt"}, 7.0) == (True, None)


def test_restarts_spread_over_more_than_the_window_are_fine():
    guard = RestartGuard()
    assert all(guard.allow("web", {"app.py"}, now=i * 13.0)[0] for i in range(50))
