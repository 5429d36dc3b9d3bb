"""The memory rules as pure functions over request records (a fake clock: times are given)."""

from procrun.diagnose.memory import Memory, Record, join_disk


class Client:
    """Requests of one client key, one after the other, 0.1 s apart."""

    def __init__(self, memory, key="k1", start=0.0):
        self.memory, self.key, self.now = memory, key, start
        self.found = []

    def __call__(self, instance, status, path="/me", method="GET", pid=None, **extra):
        self.now += 0.1
        pid = pid if pid is not None else 1000 + int(instance.rsplit(".", 1)[1])
        record = Record(self.now, self.now + 0.01, self.key, method, path, status, instance, pid, **extra)
        self.found += self.memory.feed(record)
        return self.found


def test_success_then_failure_elsewhere_is_suspected_and_a_flap_confirms():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, set_cookie=True)
    found = c("web.3", 401)
    assert len(found) == 1 and found[0].status == "suspected" and found[0].kind == "memory"
    assert found[0].line() == ("GET /me with the same session: 200 from web.1, 401 from web.3 — "
                               "state kept in process memory (sessions?)")
    c("web.1", 200)
    assert found[-1].status == "confirmed"


def test_two_failures_away_from_the_issuer_confirm():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, set_cookie=True)
    c("web.2", 401)
    c("web.3", 401)
    finding = next(iter(memory.findings.values()))
    assert finding.status == "confirmed" and finding.failures == [("web.2", 401), ("web.3", 401)]
    assert finding.line().endswith("401 from web.3 (x2) — state kept in process memory (sessions?)")


def test_login_redirect_counts_as_failure_and_confirmed_keys_take_5xx_as_evidence():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, set_cookie=True)
    c("web.2", 302, login_redirect=True)
    c("web.1", 200)  # flap: confirmed
    c("web.3", 500)
    finding = next(iter(memory.findings.values()))
    assert finding.status == "confirmed" and ("web.3", 500) in finding.failures


def test_forgotten_on_restart_on_the_same_instance():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, pid=11)
    found = c("web.1", 401, pid=12)
    assert found and found[0].kind == "forgotten"
    assert "after it restarted" in found[0].line()


def test_a_signed_cookie_the_same_instance_rejects_after_a_restart_is_its_secret_key_not_memory():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, pid=11, signed_cookie=True)
    found = c("web.1", 401, pid=12, signed_cookie=True)
    assert found and found[0].kind == "secret-key"


def test_a_signed_cookie_others_reject_is_a_per_instance_secret_key():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, signed_cookie=True)
    found = c("web.2", 401, signed_cookie=True)
    assert found[0].kind == "secret-key" and "secret_key = os.urandom" in found[0].line()


def test_disk_joins_the_file_the_succeeding_instance_wrote():
    memory = Memory()
    c = Client(memory, key="")
    c("web.1", 200, path="/uploads/ab12.txt")
    found = c("web.2", 404, path="/uploads/ab12.txt")
    join_disk(found, {"web.1": {"uploads/ab12.txt"}})
    assert found[0].kind == "disk" and "local disk" in found[0].line() and "the same client" in found[0].line()


# -- what must not be a finding


def nothing(*steps, memory=None):
    memory = memory or Memory()
    clients = {}
    for step in steps:
        key, instance, status, *rest = step
        extra = rest[0] if rest else {}
        client = clients.setdefault(key, Client(memory, key))
        client(instance, status, **extra)
    return list(memory.findings.values())


def test_an_unsafe_request_from_that_client_in_between():
    assert nothing(("k", "web.1", 200), ("k", "web.2", 200, {"method": "POST", "path": "/me"}), ("k", "web.3", 401)) == []


def test_a_404_for_a_resource_another_client_deleted():
    assert nothing(("a", "web.1", 200, {"path": "/items/7"}), ("b", "web.2", 204, {"method": "DELETE", "path": "/items/7"}),
                   ("a", "web.3", 404, {"path": "/items/7"})) == []


def test_different_client_keys():
    assert nothing(("a", "web.1", 200), ("b", "web.2", 401)) == []


def test_cookie_churn_of_an_analytics_cookie_gives_a_new_key_not_a_finding():
    # an analytics cookie the backend did not issue is not in the key; a cookie it did issue makes a new key
    assert nothing(("a", "web.1", 200, {"set_cookie": True}), ("a2", "web.2", 401)) == []


def test_304_versus_200_and_429():
    assert nothing(("k", "web.1", 200), ("k", "web.2", 304), ("k", "web.3", 429)) == []


def test_answers_of_two_releases_are_never_compared():
    """A restart for a code or .env change makes a new release: a moved route, a rotated secret."""
    memory = Memory()
    c = Client(memory)
    c("web.1", 200, release=0)
    c("web.2", 401, release=1)
    c("web.3", 401, release=1)
    assert memory.findings == {}


def test_router_made_answers():
    assert nothing(("k", "web.1", 200), ("k", "web.2", 503, {"router_made": True}),
                   ("k", "web.2", 502, {"router_made": True})) == []


def test_get_logout_is_unsafe():
    assert nothing(("k", "web.1", 200), ("k", "web.2", 302, {"path": "/logout"}), ("k", "web.3", 401)) == []


def test_overlapping_requests_of_one_client():
    memory = Memory()
    memory.feed(Record(0.0, 0.5, "k", "GET", "/me", 200, "web.1", 1))
    memory.feed(Record(0.6, 2.0, "k", "GET", "/other", 200, "web.2", 2))
    assert memory.feed(Record(1.0, 1.1, "k", "GET", "/me", 401, "web.3", 3)) == []
    assert memory.findings == {}


def test_the_same_process_changing_its_answer_is_not_instance_dependent():
    assert nothing(("k", "web.1", 200), ("k", "web.1", 401)) == []


def test_listening_sockets_are_read_from_proc_net_tcp_rows():
    from procrun.platform.linux import parse_listeners
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1\n"
            "   1: 0100007F:1F41 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 456 1\n")
    assert parse_listeners(text) == [(8000, "123")]
    six = ("  sl  local_address                         remote_address                        st tx_queue rx_queue "
           "tr tm->when retrnsmt   uid  timeout inode\n"
           "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
           "00000000:00000000 00:00000000 00000000     0        0 789 1\n")
    assert parse_listeners(six) == [(8080, "789")]


def test_memory_stays_bounded_with_unique_paths_and_clients():
    memory = Memory(limit=100)
    for i in range(5000):
        memory.feed(Record(i, i + 0.01, f"k{i}", "GET", f"/items/{i}", 200, "web.1", 1))
    assert len(memory._seen) <= 100 and len(memory._recent) <= 100


# -- lineage: a session followed from the instance that issued it, verified by replay

def lineage(memory, status=401, **extra):
    """A login POST answered by web.1 issues key k2; the next safe request, on web.2, fails."""
    login = Client(memory, key="k1")
    login("web.1", 302, method="POST", path="/login", issued="k2")
    user = Client(memory, key="k2", start=login.now)
    user("web.2", status, **extra)
    return user


def test_a_session_rejected_by_another_instance_than_its_issuer_is_verified_on_the_issuer():
    memory = Memory()
    lineage(memory, 302, login_redirect=True)
    assert memory.findings == {}  # not said before the issuer has answered
    (verify,) = memory.pending
    assert verify.instance == "web.1" and verify.record.path == "/me"
    (finding,) = memory.verified(verify, 200, False, 5.0)
    assert finding.status == "confirmed" and finding.kind == "memory" and finding.replays == 1
    assert finding.line() == ("GET /me with the same session: issued by web.1 (POST /login), 302 from web.2 — "
                              "state kept in process memory (sessions?)")
    assert (5.0, "web.1", 200) in finding.evidence


def test_a_page_the_issuer_rejects_too_is_not_instance_dependent():
    memory = Memory()
    lineage(memory, 404, path="/favicon.ico")
    (verify,) = memory.pending
    assert memory.verified(verify, 404, False, 5.0) == [] and memory.findings == {}


def test_a_session_carrying_signed_data_names_the_secret_key():
    memory = Memory()
    lineage(memory, 401, signed_cookie=True)
    (finding,) = memory.verified(memory.pending[0], 200, False, 5.0)
    assert finding.kind == "secret-key"


def test_without_replay_a_rejection_is_suspected_at_once_but_a_404_is_not():
    memory = Memory(replay=False)
    lineage(memory, 401)
    assert [f.status for f in memory.findings.values()] == ["suspected"] and memory.pending == []
    memory = Memory(replay=False)
    lineage(memory, 404)
    assert memory.findings == {}


def test_replays_are_bounded_per_type_and_path():
    memory = Memory()
    user = lineage(memory, 401)
    user("web.3", 401)
    user("web.2", 401)
    assert len(memory.pending) == 1  # 0.2 s later: within the second


def test_a_session_that_succeeded_on_that_instance_before_is_not_a_rejection():
    memory = Memory()
    login = Client(memory, key="k1")
    login("web.1", 302, method="POST", path="/login", issued="k2")
    user = Client(memory, key="k2", start=login.now)
    user("web.2", 200, path="/home")
    user("web.2", 403, path="/admin")  # forbidden to this user everywhere
    assert memory.pending == [] and memory.findings == {}


def test_a_session_issued_in_another_release_is_not_compared():
    memory = Memory()
    login = Client(memory, key="k1")
    login("web.1", 302, method="POST", path="/login", issued="k2", release=0)
    Client(memory, key="k2", start=login.now)("web.2", 401, release=1)
    assert memory.pending == [] and memory.findings == {}


def test_one_finding_per_path_pattern_whatever_the_number_of_files():
    """An upload app: every upload read back on another instance is one finding, counted, not 95."""
    memory = Memory()
    for i in range(20):
        c = Client(memory, key="", start=i * 10.0)
        name = f"/uploads/{i:04x}aa{i:02x}.txt"
        c("web.1", 200, path=name)
        c("web.2", 404, path=name)
    (finding,) = memory.findings.values()
    assert finding.path == "/uploads/<id>.txt" and len(finding.failures) == 20
    join_disk([finding], {"web.1": {"uploads/0013aa13.txt"}})
    assert finding.kind == "disk"


# -- files a later request names: TMPDIR used across requests, local disk

def test_a_file_in_tmpdir_named_by_a_later_request_that_fails_elsewhere():
    """The twelve-factor example: an upload kept in TMPDIR, the next step reads it on another instance."""
    memory = Memory()
    memory.wrote("web.1", "upload-3f2a9c1e.csv", scratch=True)
    c = Client(memory, key="")
    c("web.2", 500, path="/process/upload-3f2a9c1e.csv")
    (verify,) = memory.pending
    assert verify.instance == "web.1" and memory.findings == {}
    (finding,) = memory.verified(verify, 200, False, 9.0)
    assert finding.kind == "tmpdir" and finding.status == "confirmed"
    assert finding.line().startswith("GET /process/<id>.csv with the same client: 200 from web.1, 500 from web.2")
    assert "TMPDIR" in finding.line()


def test_a_file_the_failing_instance_wrote_itself_or_another_release_wrote_is_not_evidence():
    memory = Memory()
    memory.wrote("web.2", "tmp/report-123456.pdf", scratch=True)
    memory.wrote("web.1", "export-abcdef.zip", scratch=False, release=0)
    c = Client(memory, key="")
    c("web.2", 404, path="/reports/report-123456.pdf")
    c("web.3", 404, path="/exports/export-abcdef.zip", release=1)
    assert memory.pending == [] and memory.findings == {}


def test_an_app_directory_file_named_by_a_failing_request_is_disk():
    memory = Memory(replay=False)
    memory.wrote("web.1", "uploads/a1b2c3d4.txt", scratch=False)
    found = Client(memory, key="")("web.3", 404, path="/uploads/a1b2c3d4.txt")
    assert [f.kind for f in found] == ["disk"] and "web.1 wrote the file it names" in found[0].line()


def test_a_5xx_is_a_suspicion_only_when_router_replay_is_all():
    for server_errors, expected in ((False, []), (True, ["web.1"])):
        memory = Memory(server_errors=server_errors)
        c = Client(memory)
        c("web.1", 200)
        c("web.2", 500)
        assert [v.instance for v in memory.pending] == expected


def test_a_session_whose_issuing_request_wrote_a_file_lives_on_disk():
    memory = Memory(replay=False)
    memory.wrote("web.1", "flask_session/2029240f6d1128be89ddc32729463129", False, serving="POST /login")
    login = Client(memory, key="k1")
    login("web.1", 302, method="POST", path="/login", issued="k2")
    (finding,) = Client(memory, key="k2", start=login.now)("web.2", 302, login_redirect=True)
    assert finding.kind == "disk"
