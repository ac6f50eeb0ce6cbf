"""Malformed and hostile packets against a live program stopped at a breakpoint.

Property-based (hypothesis, derandomized): after every case the session is in sync, `?` reports
the same stop, `g` is unchanged, the program's memory (text, data, heap, stack, read through
/proc/PID/mem) is unchanged, and at the end the program runs to its own exit code and output.
Writes to unmapped or kernel addresses must be refused; a Z that was accepted is removed by its
z and leaves the original bytes. The first tenth of the cases run in ack mode, the rest in
no-ack mode, where a packet with a bad checksum is acted on (as gdbserver does).

`make test` runs a few hundred cases; `make fuzz` runs GDBSTUB_FUZZ_PACKETS (100,000) packets
and prints the figures.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from raw_rsp import GDB_QSUPPORTED, RunningServer, elf_bytes, load_base, nm_address, same_registers, start_server
from rsp_client import Client

from packets import framing

GDBSTUB_COMMAND = [sys.executable, "-m", "gdbstub"]

FUZZ_PACKETS = int(os.environ.get("GDBSTUB_FUZZ_PACKETS", "1000"))
pytestmark = pytest.mark.timeout(max(120, FUZZ_PACKETS // 50))
EXIT_CODE = 7

UNMAPPED = [0, 0x10, 0xFFF, 0x1000, 0x7FFF_FFFF_F000]
KERNEL = [0xFFFF_FFFF_8100_0000, 0xFFFF_8880_0000_0000, 0xFFFF_FFFF_FF60_0000, 0xFFFF_FFFF_FFFF_FFFF]
LENGTHS = [0, 1, 2, 8, 0x1000, 0x20000, 0x1000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF]
THREAD_IDS = ["-1", "0", "1", "7fffffff", "ffffffffffffffffff", "p1.-1", "p-1.-1", "p0.0",
              "pffffffff.1", "zz", "", "p", "p1.", ".", "-2"]  # fmt: skip
XFER_OBJECTS = ["features", "auxv", "threads", "exec-file", "libraries-svr4", "siginfo", "memory-map",
                "osdata", "nothing"]  # fmt: skip
FEATURES = ["swbreak+", "swbreak-", "hwbreak+", "multiprocess+", "multiprocess-", "xmlRegisters=i386",
            "xmlRegisters=i386,arm,mips,arc", "QThreadEvents+", "no-resumed+", "vContSupported+",
            "fork-events+", "error-strings+", "zz", "", "=", "swbreak"]  # fmt: skip
# Malformed forms of the packets that resume, kill, detach or restart: each must be refused.
# (They are never truncated or mutated: a cut `C05;zz` is a valid `C05`.)
MALFORMED_RUN_CONTROL = [
    b"vCont;", b"vCont;x", b"vCont;c:zz", b"vCont;Czz", b"vCont;C", b"vCont;r1,", b"vCont;rzz,1",
    b"vCont;s:p1.-1zz", b"vCont;c:p.", b"Czz", b"Sqq", b"C05;zz", b"S05;zz", b"cxyz", b"sxyz",
    b"D;zz", b"vKill;zz", b"vAttach;zz", b"vAttach;", b"vRun;zz", b"vRun;6", b"qRcmd,zz", b"qRcmd,6",
    b"QNonStop:2", b"QNonStop:zz", b"QStartNoAckModezz",
]
# First characters a random text packet may not start with: they name packets that resume, kill,
# detach, restart, or switch modes, whose well-formed forms legitimately change the session.
RESERVED_FIRST = set("cCsSkDRrtiIA!vQ")


@dataclass
class Target:
    """The live program under fuzzing and what it looked like before."""

    server: RunningServer
    client: Client
    program: Path
    tid: int
    registers: bytes
    regions: list[tuple[int, int]]
    memory: dict[tuple[int, int], bytes]
    mapped: list[int]  # addresses inside the program: text (mid-instruction too), data
    marker: Path  # where the program writes its final state
    replies: collections.Counter = field(default_factory=collections.Counter)
    packets: int = 0
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))


def regions_of(pid: int, program: Path) -> list[tuple[int, int]]:
    """The program's own mappings, its heap and its stack, from /proc/PID/maps."""
    real = os.path.realpath(program)
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if "r" in parts[1] and len(parts) >= 6 and parts[5] in (real, "[heap]", "[stack]"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append((start, end))
    return out


def read_regions(pid: int, regions: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return {(start, end): os.pread(fd, end - start, start) for start, end in regions}
    finally:
        os.close(fd)


def stop_identity(reply: bytes) -> tuple[int, int]:
    """The signal and thread of a T stop reply, in any profile's encoding."""
    match = re.match(rb"T([0-9a-f]{2})", reply)
    assert match, reply[:200]
    fields = dict(pair.partition(b":")[::2] for pair in reply[3:].split(b";") if pair)
    thread = fields[b"thread"].rpartition(b".")[2]
    return int(match.group(1), 16), int(thread, 16)


# -- what to send -------------------------------------------------------------------------------


def hx(n: int) -> bytes:
    return b"%x" % n


def packet_strategies(mapped: list[int]) -> st.SearchStrategy[tuple[bytes, str]]:
    """(payload, family) pairs; the family says what the reply must be."""
    anywhere = st.sampled_from(UNMAPPED + KERNEL + mapped)
    lengths = st.sampled_from(LENGTHS)
    hexdata = st.binary(min_size=1, max_size=16).map(lambda b: b.hex().encode())
    bad_hex = st.sampled_from([b"zz", b"0", b"0g", b"123", b"xx00", b"--"])
    unwritable = st.sampled_from(UNMAPPED + KERNEL)

    reads = st.one_of(
        st.builds(lambda a, n: b"m" + hx(a) + b"," + hx(n), anywhere, lengths),
        st.builds(lambda a, n: b"x" + hx(a) + b"," + hx(n), anywhere, lengths),
        st.builds(lambda n: b"p" + hx(n), st.integers(0, 300) | st.sampled_from([2**32, 2**64 - 1])),
        st.builds(lambda o, a, off, n: b"qXfer:%s:read:%s:%s,%s" % (o.encode(), a, hx(off), hx(n)),
                  st.sampled_from(XFER_OBJECTS), st.sampled_from([b"", b"target.xml", b"zz", b"1"]),
                  st.sampled_from([0, 1, 0x7FFFFFFF, 2**64 - 1]), lengths),
        st.builds(lambda op, t: b"H" + op + t.encode(), st.sampled_from([b"g", b"c", b"s", b"x", b""]),
                  st.sampled_from(THREAD_IDS)),
        st.builds(lambda t: b"T" + t.encode(), st.sampled_from(THREAD_IDS)),
        st.builds(lambda t: b"qThreadStopInfo" + t.encode(), st.sampled_from(THREAD_IDS)),
        st.builds(lambda op, fd, n, off: {
            "pread": b"vFile:pread:%s,%s,%s" % (hx(fd), hx(n), hx(off)),
            "close": b"vFile:close:" + hx(fd),
            "fstat": b"vFile:fstat:" + hx(fd),
            "pwrite": b"vFile:pwrite:%s,%s:abc" % (hx(fd), hx(off)),
        }[op], st.sampled_from(["pread", "close", "fstat", "pwrite"]),
            st.integers(0, 40) | st.sampled_from([2**31 - 1, 2**64 - 1]), lengths, st.sampled_from([0, 2**63])),
        st.builds(lambda fs: b"qSupported" + (b":" + b";".join(f.encode() for f in fs) if fs else b""),
                  st.lists(st.sampled_from(FEATURES), max_size=5)),
        st.sampled_from([b"qC", b"qfThreadInfo", b"qsThreadInfo", b"qAttached", b"qOffsets", b"?",
                         b"qHostInfo", b"qProcessInfo", b"jThreadsInfo", b"qTStatus", b"vCont?",
                         b"QPassSignals:zz", b"QProgramSignals:;;", b"QThreadEvents:zz", b"qGetTLSAddr:zz",
                         b"QEnvironmentHexEncoded:zz", b"qMemoryRegionInfo:zz", b"qMemoryRegionInfo:"]),
    )
    writes = st.one_of(
        # Well-formed writes where nothing can be written: refused.
        st.builds(lambda a, d: b"M%s,%s:%s" % (hx(a), hx(len(d) // 2), d), unwritable, hexdata),
        st.builds(lambda a, d: b"X%s,%s:%s" % (hx(a), hx(len(d)), framing.escape_binary(d)), unwritable,
                  st.binary(min_size=1, max_size=16)),
    ).map(lambda p: (p, "refused"))
    malformed_writes = st.one_of(
        st.builds(lambda a, n, d: b"M%s,%s:%s" % (hx(a), hx(n), d), anywhere, lengths, bad_hex),
        st.builds(lambda a, d: b"M%s,%s:%s" % (hx(a), hx(len(d) // 2 + 1), d), anywhere, hexdata),
        st.builds(lambda a, n: b"X%s,%s:" % (hx(a), hx(n)), anywhere, st.integers(1, 64)),
        st.builds(lambda n, d: b"P%s=%s" % (hx(n), d), st.integers(0, 200) | st.sampled_from([2**64 - 1]), bad_hex),
        st.builds(lambda n: b"P%s=" % hx(n) + b"0" * 3, st.integers(0, 100)),
        st.builds(lambda d: b"G" + d, bad_hex | hexdata),
    ).map(lambda p: (p, "malformed"))
    breakpoints = st.builds(
        lambda t, a, k: b"Z%d,%s,%s" % (t, hx(a), hx(k)),
        st.integers(0, 5) | st.just(9), anywhere, st.sampled_from([0, 1, 2, 4, 8, 3, 0x1000, 2**32])
    ).map(lambda p: (p, "breakpoint"))
    removals = st.builds(lambda t, a, k: b"z%d,%s,%s" % (t, hx(a), hx(k)), st.integers(0, 4), anywhere,
                         st.sampled_from([1, 2, 4, 8])).map(lambda p: (p, "any"))
    texts = st.text(alphabet="0123456789abcdefxyzXYZ,:;.-+=?gGpPmMxXzZHTqF", min_size=1, max_size=40).filter(
        lambda s: s[0] not in RESERVED_FIRST).map(lambda s: (s.encode(), "any"))
    garbage = st.binary(min_size=1, max_size=64).filter(
        lambda b: chr(b[0]) not in RESERVED_FIRST).map(lambda b: (framing.escape_binary(b), "any"))
    truncated = st.builds(lambda p, cut: p[: max(1, len(p) * cut // 100)], reads | writes.map(lambda x: x[0]),
                          st.integers(1, 99)).filter(lambda p: chr(p[0]) not in RESERVED_FIRST or p[:1] == b"v")
    run_control = st.sampled_from(MALFORMED_RUN_CONTROL).map(lambda p: (p, "refused"))
    return st.one_of(
        reads.map(lambda p: (p, "any")), writes, malformed_writes, breakpoints, removals, texts, garbage,
        truncated.filter(lambda p: not p.startswith(b"v") or p.startswith(b"vFile")).map(lambda p: (p, "any")),
        run_control,
    )


# -- how to send it -----------------------------------------------------------------------------


def exchange(target: Target, payload: bytes, bad_checksum: bool) -> bytes | None:
    """Send one packet and return its reply (None: a bad checksum was refused in ack mode)."""
    client = target.client
    wire = framing.frame(payload)
    if bad_checksum:
        wire = wire[:-2] + (b"00" if wire[-2:] != b"00" else b"01")
    target.recent.append((payload[:120], bad_checksum))
    target.packets += 1
    client.send_raw(wire)
    if not client.no_ack:
        event = client.next_event(timeout=10)
        if bad_checksum:
            assert isinstance(event, framing.Nak), event
            target.replies["-"] += 1
            return None
        assert isinstance(event, framing.Ack), event
    reply = client.read_reply(timeout=10)
    kind = ("OK" if reply == b"OK" else "empty" if reply == b""
            else reply[:1].decode() if reply[:1] in (b"E", b"T", b"m", b"l", b"F") else "other")
    target.replies[kind] += 1
    return reply


def check_reply(payload: bytes, family: str, reply: bytes | None) -> None:
    if reply is None:
        return
    # Nothing that is sent here may resume, end or detach the program (an `x` reply is raw data).
    assert payload[:1] == b"x" or not re.fullmatch(rb"[WXT][0-9a-f]{2}.*", reply, re.S) or payload[:1] in b"?qT", \
        (payload, reply)
    if family == "refused":
        assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;.*)?|E\..*|", reply, re.S), (payload, reply)
    elif family == "malformed":
        assert reply != b"OK", (payload, reply)


_nonce = iter(range(1 << 62))


def check_target(target: Target) -> None:
    client = target.client
    # In sync: the very next reply is the answer to this echo.
    nonce = b"sync%d" % next(_nonce)
    assert client.request(b"qEcho:" + nonce) == b"qEcho:" + nonce, list(target.recent)
    stop = client.request(b"?")
    assert stop_identity(stop) == (5, target.tid), (stop[:200], list(target.recent))
    # A qSupported without xmlRegisters asks for gdb's built-in layout: the same values.
    assert same_registers(client.request(b"g"), target.registers), list(target.recent)
    now = read_regions(target.server.pid, target.regions)
    for region, before in target.memory.items():
        if now[region] != before:
            diff = next(i for i in range(len(before)) if now[region][i] != before[i])
            raise AssertionError(f"memory changed at {region[0] + diff:#x}: {list(target.recent)}")


def point_key(payload: bytes) -> tuple:
    """What a Z or z packet names: an int3 is one per address whatever its kind; a hardware
    breakpoint is one per address; a watchpoint is its type, address and length."""
    kind, addr, length = payload[1:].split(b",")[:3]
    if kind in (b"0", b"1"):
        return kind, int(addr, 16)
    return kind, int(addr, 16), int(length, 16)


def run_case(target: Target, case: list[tuple[tuple[bytes, str], bool]]) -> None:
    inserted: set[tuple] = set()
    for (payload, family), bad_checksum in case:
        reply = exchange(target, payload, bad_checksum)
        check_reply(payload, family, reply)
        if payload[:1] == b"Z" and reply == b"OK":
            inserted.add(point_key(payload))
            # An int3 needs memory to go in; the debug registers take no kernel address.
            if any(payload.startswith(b"Z0,%s," % hx(a)) for a in UNMAPPED + KERNEL) or \
                    any(payload.startswith(b"Z%d,%s," % (t, hx(a))) for t in range(1, 5) for a in KERNEL):
                raise AssertionError(f"accepted {payload!r} at an address that cannot hold it")
        elif payload[:1] == b"z" and reply == b"OK":
            assert point_key(payload) in inserted, f"{payload!r} removed what was never inserted"
            inserted.discard(point_key(payload))
    for key in sorted(inserted):
        kind, addr, *length = key
        removal = b"z%s,%x,%x" % (kind, addr, length[0] if length else 1)
        assert exchange(target, removal, False) == b"OK", removal
    check_target(target)


# -- the test -----------------------------------------------------------------------------------


@pytest.fixture
def target(programs, tmp_path: Path):
    program = programs.simple
    marker = tmp_path / "marker"
    server = start_server(program, [str(EXIT_CODE), str(marker)], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        base = load_base(server.pid, program)
        add = base + nm_address(program, "add")
        # Stopped at a breakpoint that is then removed: any int3 left later is the fuzzer's.
        assert client.request(b"Z0,%x,1" % add) == b"OK"
        stop = client.request(b"vCont;c")
        assert client.request(b"z0,%x,1" % add) == b"OK"
        regions = regions_of(server.pid, program)
        mapped = [add, add + 1, add + 2, add + 3, base + nm_address(program, "buf"),
                  base + nm_address(program, "counter"), base + nm_address(program, "main") + 5]
        yield Target(server, client, program, stop_identity(stop)[1], client.request(b"g"), regions,
                     read_regions(server.pid, regions), mapped, marker)
    finally:
        client.close()
        server.stop()


def fuzz(target: Target, packets: int) -> None:
    case_strategy = st.lists(st.tuples(packet_strategies(target.mapped), st.booleans()), min_size=1, max_size=3)
    examples = max(1, packets // 2)  # cases hold two packets on average

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=case_strategy)
    def one_case(case) -> None:
        run_case(target, case)

    one_case()


def test_hostile_packets_change_nothing_and_the_program_exits_normally(target: Target) -> None:
    started = time.monotonic()
    in_ack_mode = FUZZ_PACKETS // 10
    fuzz(target, in_ack_mode)
    ack_packets = target.packets
    assert target.client.request(b"QStartNoAckMode") == b"OK"
    target.client.no_ack = True
    fuzz(target, FUZZ_PACKETS - in_ack_mode)
    elapsed = time.monotonic() - started
    print(f"\n{target.packets} hostile packets ({ack_packets} in ack mode) in {elapsed:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in target.replies.most_common()))
    # Finally the client the program started with takes it to its end.
    client = target.client
    client.request(GDB_QSUPPORTED)
    client.request(b"Hc-1")
    end = client.request(b"c", timeout=30)
    assert re.fullmatch(rb"W%02x(;process:[0-9a-f]+)?" % EXIT_CODE, end), (end, list(target.recent))
    # What the program wrote itself: 1 + 2 + 3 + 4 + 5, and the store after the loop.
    assert target.marker.read_text() == "counter=15 buf=Hello\n"


# -- breakpoints that cannot be honoured, against gdbserver ------------------------------------


# (request, with {add} the address of add()); gdbserver 13's answers are the reference.
Z_SCRIPT = [
    "Z0,{add},1", "Z0,{add},1", "z0,{add},1",     # inserted twice, removed once: it is gone
    "z0,{add},1",                                 # removing it again: an error
    "Z0,{add1},1", "z0,{add1},1",                 # inside an instruction: accepted and undone
    "Z0,10,1", "Z0,ffffffff81000000,1",           # no memory there: refused
    "z0,10,1",
    "Z1,10,1", "z1,10,1", "z1,10,1",              # hardware breakpoints need no memory
    "Z2,{add},4", "z2,{add},4", "z2,{add},4",
]


def z_session(command: list[str], program: Path, log: Path) -> tuple[list[tuple[str, bytes, bytes]], bytes]:
    """Each step's reply kind and the bytes at add() in /proc/PID/mem after it, and the ELF's."""
    server = start_server(program, [str(EXIT_CODE)], log, command=command)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.request(b"?")
        base = load_base(server.pid, program)
        add = base + nm_address(program, "add")
        steps = []
        for step in Z_SCRIPT:
            reply = client.request(step.format(add=f"{add:x}", add1=f"{add + 1:x}").encode())
            kind = "OK" if reply == b"OK" else "E" if reply.startswith(b"E") else reply.decode()
            steps.append((step, kind, read_regions(server.pid, [(add, add + 4)])[(add, add + 4)]))
        end = client.request(b"c", timeout=30)
        assert re.fullmatch(rb"W0*%x(;process:[0-9a-f]+)?" % EXIT_CODE, end), end  # gdbserver: W7
        return steps, elf_bytes(program, add - base, 4)
    finally:
        client.close()
        server.stop()


def test_breakpoints_that_cannot_be_honoured_are_refused_or_undone_as_with_gdbserver(programs, tmp_path):
    if not shutil.which("gdbserver"):
        pytest.skip("gdbserver not installed")
    theirs, elf = z_session(["gdbserver"], programs.simple, tmp_path / "gdbserver.log")
    ours, _ = z_session(GDBSTUB_COMMAND, programs.simple, tmp_path / "gdbstub.log")
    assert [kind for _, kind, _ in ours] == [kind for _, kind, _ in theirs]
    assert [m for _, _, m in ours] == [m for _, _, m in theirs]
    # The original bytes, from the program file, are what is left; and the int3 was really there.
    assert ours[-1][2] == elf
    assert ours[0][2] == b"\xcc" + elf[1:] and ours[4][2] == elf[:1] + b"\xcc" + elf[2:]
    assert [kind for _, kind, _ in ours[6:8]] == ["E", "E"]


def test_watchpoints_at_kernel_addresses_are_refused_at_once(target: Target) -> None:
    # gdbserver accepts these and fails the next resume; the debug registers never take them.
    for kind in (1, 2, 3, 4):
        reply = target.client.request(b"Z%d,ffffffff81000000,%d" % (kind, 1 if kind == 1 else 4))
        assert reply.startswith(b"E") or reply == b"", (kind, reply)
    check_target(target)
