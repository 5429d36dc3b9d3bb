"""Every backing fault, on each direction, against the proxy alone: what goes in, what comes
out, when. A real loopback service (it reads a request to its end, answers, closes) and a real
client, through ``backing.proxy.Proxy`` on real sockets; one event loop runs all three, so the
timings compare like with like."""

import asyncio
import random
import time

import pytest

from procrun.backing.faults import DIRECTIONS, KINDS, make
from procrun.backing.proxy import Link, Proxy
from procrun.backing.urls import Backing

UP = bytes(range(256)) * 16  # 4 KiB the client sends
DOWN = bytes(reversed(range(256))) * 16  # 4 KiB the service answers
SLOW = 0.6  # seconds: latency, slow_close and bandwidth are set to take about this long


class Seen:
    def __init__(self):
        self.up, self.up_chunks, self.up_eof_at, self.down, self.down_chunks = b"", 0, None, b"", 0
        self.done_at, self.error = None, None


async def service(seen, reader, writer):
    try:
        while data := await reader.read(65536):
            seen.up += data
            seen.up_chunks += 1
        seen.up_eof_at = time.monotonic()
        writer.write(DOWN)
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def hold(reader, writer):
    """A service that keeps a connection until the client ends it."""
    try:
        await reader.read()
    except OSError:
        pass
    finally:
        writer.close()


async def exchange(fault, wait=3.0, up=UP):
    """One connection through a proxy under ``fault`` (None: none): the client sends ``up``,
    half-closes and reads to the end. What each side saw, with times from the start."""
    seen = Seen()
    server = await asyncio.start_server(lambda r, w: service(seen, r, w), "127.0.0.1", 0)
    proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", server.sockets[0].getsockname()[1]),
                  rng=random.Random(5))
    await proxy.start()
    if fault is not None:
        await proxy.begin(fault)
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(up)
        writer.write_eof()
        try:
            while data := await asyncio.wait_for(reader.read(65536), wait - (time.monotonic() - start)):
                seen.down += data
                seen.down_chunks += 1
            seen.done_at = time.monotonic() - start
        except (asyncio.TimeoutError, OSError) as exc:
            seen.error = type(exc).__name__
        writer.close()
    finally:
        if seen.up_eof_at is not None:
            seen.up_eof_at -= start
        await proxy.close()
        server.close()
        await server.wait_closed()
    return seen


def run(fault, **kw):
    return asyncio.run(exchange(fault, **kw))


def test_without_a_fault_every_byte_passes_at_once():
    seen = run(None)
    assert (seen.up, seen.down) == (UP, DOWN) and seen.done_at < SLOW


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_latency_delays_only_its_direction(direction):
    seen = run(make("latency", {"latency": str(SLOW * 1000), "jitter": "0", "direction": direction}))
    assert (seen.up, seen.down) == (UP, DOWN)
    hops = {"both": 2, "upstream": 1, "downstream": 1}[direction]
    assert seen.done_at >= hops * SLOW * 0.95
    if direction == "downstream":
        assert seen.up_eof_at < SLOW  # the request was not delayed
    else:
        assert seen.up_eof_at >= SLOW * 0.95  # the half-close waited behind the delayed bytes


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_bandwidth_caps_throughput_on_its_direction(direction):
    rate = len(UP) / 1000 / SLOW  # KB/s so that 4 KiB takes SLOW
    seen = run(make("bandwidth", {"rate": f"{rate:.3f}", "direction": direction}), wait=5)
    assert (seen.up, seen.down) == (UP, DOWN)
    hops = {"both": 2, "upstream": 1, "downstream": 1}[direction]
    assert seen.done_at >= hops * SLOW * 0.85
    assert (seen.up_eof_at >= SLOW * 0.85) == (direction != "downstream")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_slicer_cuts_writes_into_small_pieces_in_order(direction):
    seen = run(make("slicer", {"average_size": "64", "size_variation": "32", "delay": "2000",
                               "direction": direction}), wait=5)
    assert (seen.up, seen.down) == (UP, DOWN)  # every byte, in order
    sliced = {"up": seen.up_chunks > 20, "down": seen.down_chunks > 20}  # 4 KiB in ~64 pieces, 2 ms apart
    assert sliced == {"up": direction != "downstream", "down": direction != "upstream"}


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_blackhole_forwards_nothing_on_its_direction(direction):
    seen = run(make("blackhole", {"direction": direction}), wait=1.0)
    assert seen.error == "TimeoutError" and seen.down == b""  # the answer never comes either way
    assert seen.up == (b"" if direction != "downstream" else UP)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_timeout_drops_data_then_closes_the_connection(direction):
    seen = run(make("timeout", {"timeout": "400", "direction": direction}), wait=3.0)
    assert seen.error is None and seen.done_at >= 0.38  # closed by the proxy, after the timeout
    assert seen.down == b""
    assert seen.up == (b"" if direction != "downstream" else UP)


def test_timeout_zero_holds_the_connection_without_closing_it():
    seen = run(make("timeout", {"timeout": "0"}), wait=1.0)
    assert seen.error == "TimeoutError" and (seen.up, seen.down) == (b"", b"")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_limit_data_closes_the_connection_after_so_many_bytes(direction):
    seen = run(make("limit_data", {"bytes": "1000", "direction": direction}), wait=3.0)
    if direction == "downstream":
        assert seen.up == UP and seen.down == DOWN[:1000]
    else:
        assert seen.up == UP[:1000] and seen.down == b""  # closed before the service could answer


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_slow_close_passes_a_close_on_late(direction):
    seen = run(make("slow_close", {"delay": str(SLOW * 1000), "direction": direction}))
    assert (seen.up, seen.down) == (UP, DOWN)
    assert (seen.up_eof_at >= SLOW * 0.95) == (direction != "downstream")  # the client's half-close, late
    hops = {"both": 2, "upstream": 1, "downstream": 1}[direction]
    assert seen.done_at >= hops * SLOW * 0.95


def test_reset_and_outage_break_connections():
    async def main():
        got = await asyncio.start_server(hold, "127.0.0.1", 0)
        proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", got.sockets[0].getsockname()[1]))
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        await asyncio.sleep(0.1)
        await proxy.begin(make("reset"))
        await proxy.end()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 2)
        writer.close()
        await proxy.begin(make("outage"))
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.end()
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # back
        writer.close()
        await proxy.close()
        got.close()

    asyncio.run(main())


def test_toxicity_touches_that_share_of_connections():
    async def main():
        seen = Seen()
        server = await asyncio.start_server(lambda r, w: service(seen, r, w), "127.0.0.1", 0)
        proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", server.sockets[0].getsockname()[1]),
                      rng=random.Random(2))
        await proxy.start()
        await proxy.begin(make("limit_data", {"bytes": "10", "toxicity": "0.5"}))
        whole = 0
        for _ in range(40):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x" * 100)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 3)
            whole += answer == DOWN
            writer.close()
        await proxy.close()
        server.close()
        return whole

    assert 8 <= asyncio.run(main()) <= 32  # about half went through untouched


def test_every_kind_is_tested_here():
    tested = {"latency", "bandwidth", "slicer", "blackhole", "timeout", "limit_data", "slow_close", "reset", "outage"}
    assert tested == set(KINDS)


def test_a_new_instance_gets_its_own_port_and_its_connections_are_owned_at_accept():
    async def main():
        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", server.sockets[0].getsockname()[1]))
        early = proxy.listen("worker.1")  # made before the proxy serves (before the loop, in a session)
        await proxy.start()
        late = proxy.listen("worker.2")  # made while it runs (scale)
        assert len({proxy.port, early, late}) == 3 and proxy.listen("worker.1") == early
        for port in (early, late, proxy.port):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.05)
            writer.close()
        owners = [link.owner for link in proxy.history]
        await proxy.begin(make("outage"))
        third = proxy.listen("worker.3")  # made during an outage: refused like the others
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", third)
        await proxy.end()
        _, writer = await asyncio.open_connection("127.0.0.1", third)
        await asyncio.sleep(0.05)
        writer.close()
        owners.append(proxy.history[-1].owner)
        await proxy.close()
        server.close()
        return owners

    assert asyncio.run(main()) == ["worker.1", "worker.2", None, "worker.3"]


def test_a_half_close_toward_a_peer_that_reset_closes_the_link_quietly():
    """Regression (found by the 5-minute soak): passing a half-close on to a connection its peer
    had reset raised ENOTCONN inside a timer, logged a traceback to stderr each time, and left the
    link open; with stderr a full pipe the session stopped answering."""
    class Gone:
        closed = False

        def can_write_eof(self):
            return True

        def is_closing(self):
            return self.closed

        def write_eof(self):
            raise OSError(107, "Transport endpoint is not connected")

        def close(self):
            self.closed = True

        def get_extra_info(self, name, default=None):
            return default

    async def main():
        proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", 1))
        link = Link(proxy, Gone(), "worker.1")
        link.upstream = Gone()
        proxy.links.add(link)
        link.eof(0)  # the client half-closed; the service side is gone
        await proxy.close()
        return link

    link = asyncio.run(main())
    assert link.closed is not None and link not in link.proxy.links
