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


def test_watch_restarts_reset_what_was_seen():
    memory = Memory()
    c = Client(memory)
    c("web.1", 200)
    memory.reset()
    c("web.2", 401)
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
