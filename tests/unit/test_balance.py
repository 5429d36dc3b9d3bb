"""The router's balancing rule: no request pattern pins a path to an instance."""

import random
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.router.balance import Balancer


class Target(NamedTuple):
    name: str


def ready(n):
    return [Target(f"web.{i}") for i in range(1, n + 1)]


@settings(max_examples=200, deadline=None)
@given(kinds=st.integers(1, 6), instances=st.integers(2, 6), seed=st.integers(0, 2**32), clients=st.integers(1, 3))
def test_a_client_cycling_its_paths_reaches_every_instance_on_every_path(kinds, instances, seed, clients):
    """k request kinds x n instances, each client cycling its kinds in order: within n rounds,
    every (client, kind) has been answered by every instance (round-robin fails this when
    gcd(k, n) > 1)."""
    balancer = Balancer("spread", random.Random(seed))
    pool = ready(instances)
    seen = {(c, k): set() for c in range(clients) for k in range(kinds)}
    for _ in range(instances):
        for kind in range(kinds):
            for client in range(clients):
                seen[(client, kind)].add(balancer.order(pool, f"client-{client}", f"/path/{kind}")[0].name)
    assert all(names == {t.name for t in pool} for names in seen.values())


def test_round_robin_is_the_sticky_pattern_spread_replaces():
    """The old rule, kept as a mode: two paths alternating over two instances never cross."""
    balancer, pool = Balancer("round-robin"), ready(2)
    served = {"/a": set(), "/b": set()}
    for _ in range(10):
        for path in served:
            served[path].add(balancer.order(pool, "c", path)[0].name)
    assert all(len(names) == 1 for names in served.values())


@pytest.mark.parametrize("mode", ["spread", "random"])
def test_anonymous_requests_are_spread_at_random_and_replay_with_the_seed(mode):
    pool = ready(3)
    first, again = Balancer(mode, random.Random(7)), Balancer(mode, random.Random(7))
    run1 = [first.order(pool, "", "/")[0].name for _ in range(60)]
    run2 = [again.order(pool, "", "/")[0].name for _ in range(60)]
    assert run1 == run2  # the same seed, the same choices
    assert set(run1) == {t.name for t in pool}


def test_the_order_is_every_ready_instance_once_first_choice_first():
    balancer, pool = Balancer("spread", random.Random(1)), ready(4)
    for _ in range(20):
        order = balancer.order(pool, "c", "/x")
        assert sorted(t.name for t in order) == [t.name for t in pool]


def test_memory_is_bounded_whatever_the_traffic():
    balancer = Balancer("spread", random.Random(1), limit=100)
    for i in range(5000):
        balancer.order(ready(2), f"client-{i}", f"/unique/{i}")
    assert len(balancer._served) <= 100
