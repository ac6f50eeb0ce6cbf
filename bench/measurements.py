"""The measurements, each run against one live server session.

:func:`measure_session` starts a server on the target program, times the way to the first stop
reply, runs the program to bench_ready() (buffer filled), and then measures round trips, bulk reads,
single steps and breakpoint hits in that one session. :func:`run_control_in_turns` measures the
steps and hits of several servers at once instead, in batches taken in turn. Every measurement
checks what the server answered, so a fast wrong answer cannot pass for a result.
"""

from __future__ import annotations

import binascii
import contextlib
import time
from dataclasses import dataclass

import servers  # first: it puts the repository root on sys.path, for tests.rsp_client
from target_program import TargetProgram, expected_contents
from packets import framing
from tests.rsp_client import Client, ProtocolError, StopReply, parse_stop_reply

RSP = 7  # register numbers in gdb's amd64 numbering
RIP = 0x10
GDBSERVER_PACKET_SIZE = 0x47FF
MIB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    mib: int  # bulk-read buffer size
    round_trips: int  # per small-packet kind
    steps: int
    breakpoint_hits: int


FULL = Sizes(mib=64, round_trips=5000, steps=20000, breakpoint_hits=5000)
QUICK = Sizes(mib=8, round_trips=1000, steps=2000, breakpoint_hits=500)

# Metric keys, in table order, with their unit and which direction is better.
METRICS: dict[str, tuple[str, str]] = {
    "startup_to_first_stop": ("ms", "lower"),
    "m1_round_trips": ("req/s", "higher"),
    "p10_round_trips": ("req/s", "higher"),
    "g_round_trips": ("req/s", "higher"),
    "bulk_m_max_packet": ("MB/s", "higher"),
    "bulk_m_0x47ff_packet": ("MB/s", "higher"),
    "bulk_x_max_packet": ("MB/s", "higher"),
    "bulk_X_write": ("MB/s", "higher"),
    "single_steps": ("steps/s", "higher"),
    "breakpoint_hits": ("hits/s", "higher"),
}
DESCRIPTIONS = {
    "startup_to_first_stop": "spawn server -> '?' stop reply",
    "m1_round_trips": "m<rsp>,1 round trips",
    "p10_round_trips": "p10 round trips",
    "g_round_trips": "g round trips",
    "bulk_m_max_packet": "m read, largest packets",
    "bulk_m_0x47ff_packet": "m read, 0x47ff-size packets",
    "bulk_x_max_packet": "x read (binary-upload)",
    "bulk_X_write": "X write, largest packets",
    "single_steps": "vCont;s steps",
    "breakpoint_hits": "bp hit + z0/s/Z0 step-over",
}


@dataclass
class SessionResult:
    server: str
    values: dict[str, float | None]  # None: the server does not support it
    details: dict[str, object]


def measure_session(spec: servers.ServerSpec, target: TargetProgram, sizes: Sizes,
                    with_run_control: bool = True) -> SessionResult:
    values: dict[str, float | None] = {}
    details: dict[str, object] = {}
    # Enough loop iterations that neither stepping nor breakpoints can run the program to its end.
    iterations = sizes.steps + sizes.breakpoint_hits + 1000
    started = time.perf_counter()
    with servers.start(spec, target.argv(sizes.mib, iterations)) as server:
        client = server.connect()
        try:
            features, _first_stop = client.handshake()
            values["startup_to_first_stop"] = (time.perf_counter() - started) * 1000
            if not client.no_ack:
                raise ProtocolError(f"{spec.name} did not enter no-ack mode")
            details["packet_size"] = int(str(features.get("PacketSize", "0")), 16)
            details["binary_upload"] = features.get("binary-upload") is True

            stop = run_to(client, target.symbols["bench_ready"])  # the buffer is filled
            n = sizes.round_trips
            values["m1_round_trips"] = round_trips(client, b"m%x,1" % stop.register_value(RSP), n)
            values["p10_round_trips"] = round_trips(client, b"p10", n)
            values["g_round_trips"] = round_trips(client, b"g", n)
            bulk_reads(client, target, sizes, values, details)
            values["bulk_X_write"] = bulk_write(client, target, sizes, int(details["packet_size"]))
            if with_run_control:
                run_control(client, target, stop.thread, sizes, values)
            kill(client, stop.thread)
        finally:
            client.close()
    return SessionResult(spec.name, values, details)


def kill(client: Client, thread: bytes) -> None:
    if thread.startswith(b"p"):
        client.request(b"vKill;" + thread[1:].split(b".")[0])
    else:
        client.send(b"k")


def run_control_in_turns(specs: tuple[servers.ServerSpec, ...], target: TargetProgram, sizes: Sizes,
                         batches: int = 10) -> dict[str, dict[str, float]]:
    """Single steps, then breakpoint hits, of every server with all their sessions open: the
    servers take turns batch by batch (in an order that alternates), and each one's rate is
    over all its batches.

    gdbserver sleeps in its waits, and on a VM waking costs less after the machine has idled:
    its rate depends on what ran just before it. Here each server's batches follow the other
    servers' batches, where in `measure_session` its steps follow its own bulk transfers."""
    iterations = sizes.steps + sizes.breakpoint_hits + 1000
    steps, hits = max(1, sizes.steps // batches), max(1, sizes.breakpoint_hits // batches)
    ticks, tick = target.symbols["bench_ticks"], target.symbols["bench_tick"]
    with contextlib.ExitStack() as stack:
        sessions: list[tuple[str, Client, bytes]] = []
        for spec in specs:
            server = stack.enter_context(servers.start(spec, target.argv(1, iterations)))
            client = server.connect()
            stack.callback(client.close)
            client.handshake()
            stop = run_to(client, target.symbols["bench_ready"])
            stack.callback(kill, client, stop.thread)
            sessions.append((spec.name, client, stop.thread))
        seconds = {name: {"single_steps": 0.0, "breakpoint_hits": 0.0} for name, _, _ in sessions}
        started_at = {name: read_u64(client, ticks) for name, client, _ in sessions}
        for batch in range(batches):
            for name, client, thread in (sessions if batch % 2 == 0 else sessions[::-1]):
                seconds[name]["single_steps"] += steps / single_steps(client, thread, steps)
        for name, client, _ in sessions:
            if read_u64(client, ticks) <= started_at[name]:
                raise ProtocolError(f"{name}: {steps * batches} steps left bench_ticks at {started_at[name]}")
        for batch in range(batches):
            for name, client, thread in (sessions if batch % 2 == 0 else sessions[::-1]):
                before = read_u64(client, ticks)
                seconds[name]["breakpoint_hits"] += hits / breakpoint_hits(client, thread, tick, hits)
                # As in run_control: each hit stops at a new call's entry, and the steps (or the
                # last batch) may have left one call half done.
                calls = read_u64(client, ticks) - before
                if not hits - 2 <= calls <= hits:
                    raise ProtocolError(f"{name}: {hits} breakpoint hits, but {calls} calls ran")
    counts = {"single_steps": steps * batches, "breakpoint_hits": hits * batches}
    return {name: {metric: counts[metric] / spent for metric, spent in per_metric.items()}
            for name, per_metric in seconds.items()}


def run_to(client: Client, addr: int) -> StopReply:
    """Continue to a breakpoint at ``addr`` (removed again); returns the stop."""
    client.request_ok(b"Z0,%x,1" % addr)
    stop = parse_stop_reply(client.request(b"vCont;c"))
    if stop.signal != 5 or stop.register_value(RIP) != addr:
        raise ProtocolError(f"expected a stop at {addr:#x}, got signal {stop.signal} "
                            f"at {stop.registers.get(RIP, b'').hex()}")
    client.request_ok(b"z0,%x,1" % addr)
    return stop


def bulk_reads(client: Client, target: TargetProgram, sizes: Sizes,
               values: dict[str, float | None], details: dict[str, object]) -> None:
    """Read the whole buffer three ways: m at the server's largest size, m at gdbserver's, x."""
    buffer = read_u64(client, target.symbols["bench_buffer"])
    size = read_u64(client, target.symbols["bench_size"])
    if size != sizes.mib * MIB:
        raise ProtocolError(f"bench_size reads {size:#x}, expected {sizes.mib * MIB:#x}")
    packet_size = int(details["packet_size"])  # type: ignore[call-overload]
    details["m_request_bytes"] = (packet_size - 1) // 2
    values["bulk_m_max_packet"], details["m_reply_bytes"] = bulk_read(
        client, buffer, size, (packet_size - 1) // 2, binary=False)
    values["bulk_m_0x47ff_packet"], _ = bulk_read(
        client, buffer, size, (GDBSERVER_PACKET_SIZE - 1) // 2, binary=False)
    if details["binary_upload"]:
        # Ask for as much as fits unescaped; the server trims to what fits escaped.
        details["x_request_bytes"] = packet_size - 2
        values["bulk_x_max_packet"], details["x_reply_bytes"] = bulk_read(
            client, buffer, size, packet_size - 2, binary=True)
    else:
        values["bulk_x_max_packet"] = None


def run_control(client: Client, target: TargetProgram, thread: bytes, sizes: Sizes,
                values: dict[str, float | None]) -> None:
    """Single steps, then breakpoint hits; the tick counter shows that the program really ran."""
    ticks = target.symbols["bench_ticks"]
    before = read_u64(client, ticks)
    values["single_steps"] = single_steps(client, thread, sizes.steps)
    after_steps = read_u64(client, ticks)
    if after_steps <= before:
        raise ProtocolError(f"{sizes.steps} steps left bench_ticks at {after_steps}")
    values["breakpoint_hits"] = breakpoint_hits(
        client, thread, target.symbols["bench_tick"], sizes.breakpoint_hits)
    # Each hit stops at a new call's entry; the step into the last call may or may not have
    # passed its increment, and the steps may have left one call half done.
    calls = read_u64(client, ticks) - after_steps
    if not sizes.breakpoint_hits - 2 <= calls <= sizes.breakpoint_hits:
        raise ProtocolError(f"{sizes.breakpoint_hits} breakpoint hits, but {calls} calls ran")


def round_trips(client: Client, packet: bytes, count: int) -> float | None:
    """Requests per second for ``packet``; None when the server does not implement it."""
    first = client.request(packet)
    if first == b"":
        return None
    _check_reply(packet, first)
    request = client.request
    start = time.perf_counter()
    for _ in range(count):
        reply = request(packet)
    elapsed = time.perf_counter() - start
    _check_reply(packet, reply)
    return count / elapsed


def _check_reply(packet: bytes, reply: bytes) -> None:
    if len(reply) == 3 and reply[:1] == b"E" or len(reply) % 2:
        raise ProtocolError(f"{packet!r} answered {reply[:80]!r}")


def read_u64(client: Client, addr: int) -> int:
    reply = client.request(b"m%x,8" % addr)
    if len(reply) != 16:
        raise ProtocolError(f"reading 8 bytes at {addr:#x} answered {reply[:80]!r}")
    return int.from_bytes(bytes.fromhex(reply.decode()), "little")


def bulk_read(client: Client, addr: int, size: int, chunk: int, binary: bool) -> tuple[float, int]:
    """MB/s (10^6 bytes) reading ``size`` bytes with requests of ``chunk`` bytes, and the largest
    number of bytes one reply carried (servers may return less than asked). Checks every byte.

    An x reply is checked as it came, against the expected bytes escaped: undoing the escapes
    in Python would cost the client more than the server spends (gdb does it in C). Servers
    escape only the four bytes that must be, so each '}' is one escape."""
    command = b"x%x,%x" if binary else b"m%x,%x"
    unhexlify = binascii.unhexlify
    request = client.request
    parts: list[bytes] = []
    pos, end = addr, addr + size
    start = time.perf_counter()
    while pos < end:
        reply = request(command % (pos, min(chunk, end - pos)))
        if binary:
            if reply[:1] != b"b":
                raise ProtocolError(f"x at {pos:#x} answered {reply[:80]!r}")
            data = reply[1:]
            length = len(data) - data.count(b"}")
        else:
            if len(reply) % 2:
                raise ProtocolError(f"m at {pos:#x} answered {reply[:80]!r}")
            data = unhexlify(reply)
            length = len(data)
        if not length:
            raise ProtocolError(f"empty read at {pos:#x}")
        parts.append(data)
        pos += length
    elapsed = time.perf_counter() - start
    _check_contents(parts, size, binary)
    largest = max(len(p) - p.count(b"}") for p in parts) if binary else max(map(len, parts))
    return size / elapsed / 1e6, largest


def _check_contents(parts: list[bytes], size: int, binary: bool) -> None:
    expected = expected_contents(0, size)
    if not binary:
        if b"".join(parts) != expected:
            raise ProtocolError("m read returned wrong memory contents")
        return
    offset = 0
    for part in parts:
        length = len(part) - part.count(b"}")
        if part != framing.escape_binary(expected[offset:offset + length]):
            raise ProtocolError(f"x read returned wrong memory contents at offset {offset:#x}")
        offset += length
    if offset != size:
        raise ProtocolError(f"x read returned {offset:#x} bytes, expected {size:#x}")


def bulk_write(client: Client, target: TargetProgram, sizes: Sizes, packet_size: int) -> float:
    """MB/s writing the buffer with X packets as large as the server takes, the bytes of each
    packet escaped as gdb escapes them. The new contents (every byte inverted) are read back
    and checked, then the original contents are written back the same way (not timed)."""
    buffer = read_u64(client, target.symbols["bench_buffer"])
    size = sizes.mib * MIB
    original = expected_contents(0, size)
    inverted = original.translate(_INVERT)
    packets = _x_packets(buffer, inverted, packet_size)
    request_ok = client.request_ok
    start = time.perf_counter()
    for packet in packets:
        request_ok(packet)
    elapsed = time.perf_counter() - start
    if _read_back(client, buffer, size, packet_size) != inverted:
        raise ProtocolError("X wrote other bytes than were sent (read back with m)")
    for packet in _x_packets(buffer, original, packet_size):
        request_ok(packet)
    return size / elapsed / 1e6


_INVERT = bytes(255 - i for i in range(256))


def _x_packets(addr: int, data: bytes, packet_size: int) -> list[bytes]:
    """`X` packets writing `data` at `addr`, each escaped payload within `packet_size`."""
    packets = []
    pos = 0
    while pos < len(data):
        header = b"X%x,%x:" % (addr + pos, 0)
        count = min(packet_size - len(header) - 8, len(data) - pos)
        while True:
            body = framing.escape_binary(data[pos:pos + count])
            header = b"X%x,%x:" % (addr + pos, count)
            excess = len(header) + len(body) - (packet_size - 32)
            if excess <= 0:
                break
            count -= excess
        packets.append(header + body)
        pos += count
    return packets


def _read_back(client: Client, addr: int, size: int, packet_size: int) -> bytes:
    """`size` bytes at `addr`, read with m (a reply may carry fewer bytes than asked)."""
    parts = []
    chunk = (packet_size - 1) // 2
    pos, end = addr, addr + size
    while pos < end:
        data = binascii.unhexlify(client.request(b"m%x,%x" % (pos, min(chunk, end - pos))))
        if not data:
            raise ProtocolError(f"empty read at {pos:#x}")
        parts.append(data)
        pos += len(data)
    return b"".join(parts)


def single_steps(client: Client, thread: bytes, count: int) -> float:
    packet = b"vCont;s:" + thread
    request = client.request
    start = time.perf_counter()
    for _ in range(count):
        reply = request(packet)
        if not reply.startswith(b"T05"):
            raise ProtocolError(f"step answered {reply[:80]!r}")
    return count / (time.perf_counter() - start)


def breakpoint_hits(client: Client, thread: bytes, addr: int, count: int) -> float:
    """Hits/s of a breakpoint in a loop, stepping over it the way gdb minimally does."""
    insert, remove = b"Z0,%x,1" % addr, b"z0,%x,1" % addr
    step = b"vCont;s:" + thread
    # The reported PC (expedited rip) must be the breakpoint address, as gdb expects with swbreak.
    at_breakpoint = b"%02x:%s;" % (RIP, addr.to_bytes(8, "little").hex().encode())
    request, request_ok = client.request, client.request_ok
    request_ok(insert)
    start = time.perf_counter()
    for _ in range(count):
        reply = request(b"vCont;c")
        if not reply.startswith(b"T05") or at_breakpoint not in reply:
            raise ProtocolError(f"continue answered {reply[:200]!r}, expected a stop at {addr:#x}")
        request_ok(remove)
        reply = request(step)
        if not reply.startswith(b"T05"):
            raise ProtocolError(f"step over the breakpoint answered {reply[:80]!r}")
        request_ok(insert)
    elapsed = time.perf_counter() - start
    request_ok(remove)
    return count / elapsed

