"""The recorder's reading of credentials: a session followed across the answer that issued it, and
what the credential carries (signed data, or an opaque id), on the shapes real frameworks send."""

import pytest

from procrun.diagnose.recorder import Recorder
from procrun.router.http import Request, Response


def request(cookie=None, authorization=None, method="GET", target=b"/me"):
    headers = [(b"Host", b"app")]
    if cookie is not None:
        headers.append((b"Cookie", cookie))
    if authorization is not None:
        headers.append((b"Authorization", authorization))
    return Request(method, target, "1.1", headers, True)


def answered(recorder, req, status, *set_cookies, instance="web.1"):
    response = Response(status, b"", [(b"Set-Cookie", c) for c in set_cookies])
    recorder.record(req, 0.0, status, instance, 100, response)
    return recorder.memory._recent[recorder._key(req)[0]][-1]


@pytest.mark.parametrize("value, data", [
    (b".eJyrViotTi1SslJKTElU0lHKLEnNLVayilaqAHLoj2NrAVgJIyg.axVkEA.jjX8o26HsBQkODnhgb-jywOrZtY", True),  # Flask, compressed
    (b"eyJ1c2VyIjoiYWRhIn0.axVkEA.YNFgGDhYuaQZdO_HKVumBMmtj8U", True),  # Flask / itsdangerous
    (b".eJyrViotTi1SslJKTElU0lHKLEnNLVayilaqAHLoj2NrAVgJIyg:1xaCMS:MoSPE0fSuhmT02Y0P1k-rltO6ZrGgLi36bEm8U1TYqY",
     True),  # Django signed_cookies, compressed
    (b"eyJ1c2VyIjoiYWRhIn0:1xaCMS:mUuQ8WtbqxjapHDkXCFqn3e5kHoOrSfAL4yQWfKTrYU", True),  # Django signed_cookies
    (b"eyJ1c2VyIjoiYSJ9", True),  # cookie-session (express)
    (b"aGVsbG8gd29ybGQgZm9vYmFyYmF6--0123456789abcdef0123456789abcdef01234567", True),  # Rails
    (b"s%3AVNdpW9i1ZtQyQ3ZsXq0pXW4tqR8y1Zc7.bs0Un1P9bDQ9uJ2o7bXH1t8Pz4k8E1Uw3Wqzv9w2t4E", False),  # express-session
    (b"x8b2kq0r9vz3m1n5c7e2d4f6h8j0l2p4", False),  # Django database/cache sessionid
    (b"5c0d7a3e-8c1f-4b2a-9d6e-3f1a2b4c5d6e", False),  # Flask-Session, uuid
])
def test_what_a_session_cookie_carries(value, data):
    """(The signed values are what itsdangerous and django.core.signing write.)"""
    recorder = Recorder(lambda finding: None)
    answered(recorder, request(), 200, b"session=" + value + b"; Path=/; HttpOnly")
    assert recorder._key(request(b"session=" + value))[1] is data


@pytest.mark.parametrize("value, data", [(b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", True),
                                         (b"Bearer 8f3c2a1b9d7e6f5a4c3b2a1f0e9d8c7b", False)])
def test_what_a_bearer_token_carries(value, data):
    assert Recorder(lambda finding: None)._key(request(authorization=value))[1] is data


def test_a_random_id_that_happens_to_start_like_base64_json_is_still_an_id():
    """Regression: a Django sessionid or csrftoken is 32 random letters and digits; one that began
    with "eyj" (1 in 20,000; a client logging in thousands of times meets one) read as signed
    data, and the memory diagnosis named a secret key where the sessions lived in memory."""
    import random
    import string

    from procrun.diagnose.recorder import carries_data

    rng = random.Random(4)
    for prefix in (b"eyJ", b"eyj", b"EYJ", b".eJ"):
        for alphabet in (string.ascii_lowercase + string.digits, string.ascii_letters + string.digits):
            for _ in range(2000):
                value = prefix + "".join(rng.choice(alphabet) for _ in range(29)).encode()
                assert not carries_data(value), value


def test_the_answer_that_sets_a_cookie_issues_the_key_the_client_sends_next():
    recorder = Recorder(lambda finding: None)
    login = answered(recorder, request(b"csrftoken=t1", method="POST", target=b"/login"), 302,
                     b"csrftoken=t1; Path=/", b"sessionid=abc123; HttpOnly; Path=/")
    after = request(b"csrftoken=t1; sessionid=abc123; _ga=GA1.2.3")  # an analytics cookie is not part of it
    assert login.issued and login.issued == recorder._key(after)[0]


def test_a_cleared_cookie_leaves_the_next_key():
    recorder = Recorder(lambda finding: None)
    recorder._issued.update({b"csrftoken", b"sessionid"})
    out = answered(recorder, request(b"csrftoken=t1; sessionid=abc"), 302,
                   b'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/')
    assert out.issued == recorder._key(request(b"csrftoken=t1"))[0]


def test_a_suspicion_is_replayed_on_the_issuer_and_its_answer_decides():
    found, replays = [], []
    recorder = Recorder(found.append, replay=lambda req, instance, answer: replays.append((req, instance, answer)))
    answered(recorder, request(method="POST", target=b"/login"), 302, b"sid=abc; Path=/", instance="web.1")
    answered(recorder, request(b"sid=abc", target=b"/me?page=2"), 401, instance="web.2")
    (req, instance, answer), = replays
    assert instance == "web.1" and req.target == b"/me?page=2" and found == []
    answer(200, False)
    assert [(f.status, f.kind) for f in found] == [("confirmed", "memory")]


@pytest.mark.parametrize("target", [b"/logout", b"/auth/callback?code=1", b"/verify?token=x", b"/reset-password"])
def test_requests_that_may_change_state_are_never_replayed(target):
    replays = []
    recorder = Recorder(lambda finding: None, replay=lambda *a: replays.append(a))
    answered(recorder, request(method="POST", target=b"/login"), 302, b"sid=abc", instance="web.1")
    answered(recorder, request(b"sid=abc", target=target), 401, instance="web.2")
    assert replays == [] and not recorder.replayable(request(b"sid=abc", target=target))


@pytest.mark.parametrize("target, status, said", [(b"/unsubscribe/list", 401, True), (b"/verify?token=x", 403, True),
                                                  (b"/auth/callback", 404, False)])
def test_a_suspicion_that_cannot_be_replayed_is_judged_as_without_replays(target, status, said):
    """Never dropped: said as suspected (a missing page after a login stays unsaid, as with replays off)."""
    found, replays = [], []
    recorder = Recorder(found.append, replay=lambda *a: replays.append(a))
    answered(recorder, request(method="POST", target=b"/login"), 302, b"sid=abc", instance="web.1")
    answered(recorder, request(b"sid=abc", target=target), status, instance="web.2")
    assert replays == []
    assert [(f.status, f.kind) for f in found] == ([("suspected", "memory")] if said else [])
