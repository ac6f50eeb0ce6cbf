"""The server and its sessions, driven with raw packets over TCP (no gdb in between).

`gdbstub 127.0.0.1:0 PROG` runs as a subprocess; the tests frame packets with packets.framing,
acknowledge like a client, and check replies against the kernel's view (/proc/PID/...), `nm`,
the target description the server itself serves, and the program file's bytes.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from raw_rsp import (
    GDB_QSUPPORTED,
    auxv_of,
    hexs,
    load_base,
    nm_address,
    proc_memory,
    process_state,
    start_server,
    vfile,
)
from rsp_client import Client

from packets import framing

pytestmark = pytest.mark.timeout(60)

AT_ENTRY = 9


def registers_from_xml(document: bytes, fetch) -> list[ET.Element]:
    """The <reg> elements of a target description, following xi:include through `fetch`."""
    root = ET.fromstring(document)
    regs: list[ET.Element] = []
    for element in root.iter():
        if element.tag == "reg":
            regs.append(element)
        elif element.tag.endswith("include"):
            regs += registers_from_xml(fetch(element.get("href")), fetch)
    return regs


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def static_server(programs, tmp_path_factory):
    """One server on the static program, stopped at its entry point; each test connects anew
    (without --once the server waits for the next client after a disconnect)."""
    log = tmp_path_factory.mktemp("session") / "server.log"
    server = start_server(programs.simple_static, [], log, once=False)
    yield server
    # 'k' kills the program; with the process gone the server has nothing left to serve.
    client = server.connect()
    try:
        client.send(b"k")
    finally:
        client.close()
    status = server.wait_exit()
    server.stop()
    assert status == 0, log.read_text()
    assert process_state(server.pid) is None


@pytest.fixture
def client(static_server):
    c = static_server.connect()
    yield c
    c.close()


# -- negotiation ------------------------------------------------------------------------------------

# Features that announce a property rather than a packet to probe.
PROPERTY_FEATURES = {"multiprocess", "swbreak", "hwbreak", "fork-events", "vfork-events",
                     "exec-events", "no-resumed", "qRelocInsn"}
# How to check that an advertised packet really has a handler: a request a handler must answer.
PACKET_PROBES = {
    "QPassSignals": b"QPassSignals:",
    "QProgramSignals": b"QProgramSignals:",
    "vContSupported": b"vCont?",
    "QThreadEvents": b"QThreadEvents:0",
    "QNonStop": b"QNonStop:0",
    # A condition or command that cannot run is refused with an error, not ignored (tests/test_agent.py).
    "ConditionalBreakpoints": b"Z0,0,1;X2,0127",
    "BreakpointCommands": b"Z0,0,1;cmds:0,X2,0127",
    "QDisableRandomization": b"QDisableRandomization:1",
    "QStartupWithShell": b"QStartupWithShell:0",
    "QEnvironmentReset": b"QEnvironmentReset",
    "QEnvironmentHexEncoded": b"QEnvironmentHexEncoded:" + hexs(b"GDBSTUB_TEST=1"),
    "QEnvironmentUnset": b"QEnvironmentUnset:" + hexs(b"GDBSTUB_TEST"),
    "QSetWorkingDir": b"QSetWorkingDir:",
    "QCatchSyscalls": b"QCatchSyscalls:0",
    "qXfer:siginfo:write": b"qXfer:siginfo:write::0:",
}


def test_qsupported_advertises_only_what_it_answers(client, static_server):
    reply = client.request(GDB_QSUPPORTED)
    features = reply.decode().split(";")
    values = dict(f.split("=", 1) for f in features if "=" in f)
    assert int(values["PacketSize"], 16) >= 0x20000
    advertised = [f[:-1] for f in features if f.endswith("+")]
    assert len(advertised) == len(set(advertised)), "a feature is advertised twice"
    unprobed = []
    for name in advertised:
        if name in PROPERTY_FEATURES or name == "QStartNoAckMode":  # no-ack: its own test
            continue
        xfer = re.fullmatch(r"qXfer:([^:]+):read", name)
        if xfer:
            annex = "target.xml" if xfer.group(1) == "features" else ""
            answer = client.request(b"qXfer:%s:read:%s:0,40" % (xfer.group(1).encode(), annex.encode()))
            if xfer.group(1) == "libraries-svr4":
                # A static program has no DT_DEBUG to follow: gdbserver answers E01 too, and
                # gdb then reads the link map itself. A dynamic one is read in other tests.
                assert answer == b"E01", answer
                continue
            assert answer[:1] in (b"m", b"l"), f"{name} advertised, but a read answers {answer[:60]!r}"
            continue
        if name == "binary-upload":
            entry = auxv_of(static_server.pid)[AT_ENTRY]
            answer = client.request(b"x%x,4" % entry)
            raw = proc_memory(static_server.pid, entry, 4)
            assert answer and not answer.startswith(b"E"), answer
            assert framing.unescape_binary(answer)[-4:] == raw
            continue
        probe = PACKET_PROBES.get(name)
        if probe is None:
            unprobed.append(name)
            continue
        answer = client.request(probe)
        assert answer != b"", f"{name} is advertised but {probe!r} gets the empty (unsupported) reply"
    assert not unprobed, f"advertised features this test cannot check (add a probe): {unprobed}"


def test_must_reply_empty_and_unknown_packets_get_the_empty_reply(client):
    assert client.request(b"vMustReplyEmpty") == b""
    assert client.request(b"qNoSuchQuery") == b""
    assert client.request(b"vNoSuchPacket;1") == b""
    assert client.request(b"?").startswith(b"T")


def test_no_ack_mode_stops_acknowledgements(client):
    assert client.request(b"QStartNoAckMode") == b"OK"
    client.no_ack = True
    client.send(b"?")
    event = client.next_event()
    assert isinstance(event, framing.Packet), f"an ack after QStartNoAckMode: {event!r}"
    assert event.payload.startswith(b"T05")


def test_no_ack_mode_answers_a_packet_with_a_bad_checksum(client):
    assert client.request(b"QStartNoAckMode") == b"OK"
    client.no_ack = True
    client.send_raw(b"$qC#00")
    assert client.read_reply(timeout=2).startswith(b"QC")


# -- stop state and registers -----------------------------------------------------------------------

def test_stop_reason_reply_format(client, static_server):
    client.request(GDB_QSUPPORTED)  # multiprocess+: thread ids are p<pid>.<tid>
    reply = client.request(b"?")
    pid = static_server.pid
    match = re.fullmatch(rb"T05((?:[0-9a-f]{2}:[0-9a-f]+;)*)thread:p([0-9a-f]+)\.([0-9a-f]+);core:[0-9a-f]+;", reply)
    assert match, reply
    assert int(match.group(2), 16) == pid and int(match.group(3), 16) == pid
    expedited = dict(pair.split(b":") for pair in match.group(1).split(b";") if pair)
    regs = _registers(client)
    rip = next(r for r in regs if r.get("name") == "rip")
    value = expedited[b"%02x" % int(rip.get("regnum"))]
    assert len(value) == int(rip.get("bitsize")) // 4
    # The static program is stopped at its exec: the PC is the kernel's AT_ENTRY.
    assert int.from_bytes(bytes.fromhex(value.decode()), "little") == auxv_of(pid)[AT_ENTRY]


def _registers(client: Client) -> list[ET.Element]:
    regs = registers_from_xml(client.xfer("features", "target.xml"),
                              lambda href: client.xfer("features", href))
    # Registers without an explicit regnum follow the previous one.
    number = 0
    for reg in regs:
        number = int(reg.get("regnum", number))
        reg.set("regnum", str(number))
        number += 1
    return regs


def test_g_packet_matches_the_served_target_description(client, static_server):
    regs = _registers(client)
    reply = client.request(b"g")
    assert re.fullmatch(rb"[0-9a-fx]+", reply), reply[:80]
    assert len(reply) == 2 * sum(int(r.get("bitsize")) // 8 for r in regs)
    # rip's slot in the image (registers in number order) holds the entry point.
    offset = 0
    for reg in sorted(regs, key=lambda r: int(r.get("regnum"))):
        size = int(reg.get("bitsize")) // 8
        if reg.get("name") == "rip":
            value = bytes.fromhex(reply[2 * offset:2 * (offset + size)].decode())
            assert int.from_bytes(value, "little") == auxv_of(static_server.pid)[AT_ENTRY]
            break
        offset += size
    else:
        raise AssertionError("no rip in the target description")


# -- framing errors and malformed packets -----------------------------------------------------------

def test_bad_checksum_is_nacked_and_a_resend_works(client):
    client.send_raw(b"$?#00")
    event = client.next_event()
    assert isinstance(event, framing.Nak), event
    assert client.nothing_pending(0.3)  # no reply to a packet that was not received
    assert client.request(b"?").startswith(b"T05")


def test_server_resends_its_reply_on_nak(client):
    reply = client.request(b"qC")
    client.send_raw(b"-")
    event = client.next_event()
    assert isinstance(event, framing.Packet) and event.payload == reply


@pytest.mark.parametrize("packet", [b"mzz,4", b"m1000", b"m1000,", b"m,4", b"M1000,2:zz"])
def test_malformed_memory_packet_gets_an_error_and_the_session_goes_on(client, packet):
    reply = client.request(packet)
    assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;.*)?", reply), reply
    assert client.request(b"?").startswith(b"T05")


@pytest.mark.parametrize("packet", [
    b"G50de",                               # a register block of the wrong length
    b"Gf0d3fa5c56c11669",
    b"P0=12",                               # a register value of the wrong size
    b"Z2,ffffffffffffffff,ffffffff",        # a watch range no debug registers could hold
    b"Z4,1000,100000000",
])
def test_well_formed_packet_with_impossible_arguments_gets_an_error(client, packet):
    # Found by sending thousands of random packets: these once ended the session, or hung it.
    started = time.monotonic()
    reply = client.request(packet)
    assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;.*)?", reply), reply
    assert time.monotonic() - started < 5
    assert client.request(b"?").startswith(b"T05")


def test_echo_reply_escapes_frame_characters(client):
    # A raw '*' in a reply reads as run-length encoding, and '#' or '$' would end the frame.
    reply = client.request(b"qEcho:a*b")
    assert reply == b"qEcho:a}\nb", reply
    assert framing.unescape_binary(reply) == b"qEcho:a*b"


def test_overlong_packet_gets_an_error_and_the_session_goes_on(client, static_server):
    entry = auxv_of(static_server.pid)[AT_ENTRY]
    big = b"M%x,10001:" % entry + b"00" * 0x10001
    assert len(big) > 0x20000
    reply = client.request(big)
    assert reply.startswith(b"E"), reply[:80]
    # Nothing of it was written.
    assert client.request(b"m%x,4" % entry) == hexs(proc_memory(static_server.pid, entry, 4))
    assert client.request(b"?").startswith(b"T05")


# -- qXfer objects ----------------------------------------------------------------------------------

def test_xfer_auxv_is_the_process_auxv(client, static_server):
    with open(f"/proc/{static_server.pid}/auxv", "rb") as f:
        expected = f.read()
    assert client.xfer("auxv", "", chunk=0x40) == expected


def test_xfer_exec_file_is_the_program_path(client, static_server):
    expected = os.path.realpath(static_server.program).encode()
    assert client.xfer("exec-file", "%x" % static_server.pid) == expected
    assert client.xfer("exec-file", "") == expected


# -- host I/O ---------------------------------------------------------------------------------------

def test_vfile_reads_the_program(client, static_server):
    path = os.path.realpath(static_server.program)
    expected = Path(path).read_bytes()
    assert vfile(client, b"vFile:setfs:0")[0] == 0
    fd, err, _ = vfile(client, b"vFile:open:%s,0,0" % hexs(path.encode()))
    assert fd >= 0 and err is None
    data = b""
    while True:
        n, err, chunk = vfile(client, b"vFile:pread:%x,%x,%x" % (fd, 0x3000, len(data)))
        assert err is None and n == len(chunk)
        if n == 0:
            break
        data += chunk
    assert data == expected
    size, err, st = vfile(client, b"vFile:fstat:%x" % fd)
    assert err is None and size == len(st) == 64
    # gdb's struct stat: big-endian; st_size follows seven 32-bit fields.
    assert struct.unpack_from(">Q", st, 28)[0] == os.stat(path).st_size
    assert vfile(client, b"vFile:close:%x" % fd)[:2] == (0, None)
    assert vfile(client, b"vFile:pread:%x,10,0" % fd)[:2] == (-1, 9)  # EBADF once closed
    missing = vfile(client, b"vFile:open:%s,0,0" % hexs(path.encode() + b".missing"))
    assert missing[:2] == (-1, 2)  # ENOENT


# -- sessions that run the program ------------------------------------------------------------------

def test_xfer_threads_lists_exactly_the_process_tasks(programs, tmp_path):
    server = start_server(programs.threads, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        pid = server.pid
        # add_share runs in the worker threads: stop when the first of them gets there.
        addr = load_base(pid, programs.threads) + nm_address(programs.threads, "add_share")
        assert client.request(b"Z0,%x,1" % addr) == b"OK"
        stop = client.request(b"vCont;c", timeout=20)
        assert stop.startswith(b"T05") and b"swbreak:" in stop, stop
        tasks = {int(t) for t in os.listdir(f"/proc/{pid}/task")}
        assert len(tasks) > 1
        document = client.xfer("threads", "")
        ids = [t.get("id") for t in ET.fromstring(document).iter("thread")]
        assert all(i.startswith(f"p{pid:x}.") for i in ids), ids
        assert sorted(int(i.split(".")[1], 16) for i in ids) == sorted(tasks)
        # qfThreadInfo/qsThreadInfo tell the same story.
        listed: list[int] = []
        reply = client.request(b"qfThreadInfo")
        while reply != b"l":
            assert reply.startswith(b"m"), reply
            listed += [int(t.split(b".")[1], 16) for t in reply[1:].split(b",")]
            reply = client.request(b"qsThreadInfo")
        assert sorted(listed) == sorted(tasks)
        # The stopping thread is one of the workers and sits at the breakpoint.
        tid = int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", stop).group(1), 16)
        assert tid in tasks and tid != pid
        client.send(b"k")
    finally:
        client.close()
        status = server.wait_exit()
        server.stop()
    assert status == 0, server.log.read_text()
    assert process_state(server.pid) is None  # killed and reaped


def test_interrupt_byte_stops_a_running_program(programs, tmp_path):
    server = start_server(programs.spin, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.send(b"vCont;c")
        assert client.nothing_pending(0.5)  # it spins: no stop reply
        assert process_state(server.pid) == "R"
        start = time.monotonic()
        client.send_raw(b"\x03")
        reply = client.read_reply(timeout=5)
        assert time.monotonic() - start < 2
        expected = rb"T02(?:[0-9a-f]{2}:[0-9a-f]+;)*thread:p%x\.%x;core:[0-9a-f]+;" % (server.pid, server.pid)
        assert re.fullmatch(expected, reply), reply
        assert process_state(server.pid) == "t"
        # The session goes on: registers and memory are readable at the stop.
        assert re.fullmatch(rb"[0-9a-f]+", client.request(b"g"))
    finally:
        client.close()
        status = server.wait_exit()
        server.stop()
    # --once: the server ends with the connection and takes the program with it.
    assert status == 0, server.log.read_text()
    assert process_state(server.pid) is None


def test_interrupt_byte_in_the_same_read_as_the_resume_is_honoured(programs, tmp_path):
    server = start_server(programs.spin, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.send_raw(framing.frame(b"vCont;c") + b"\x03")  # one segment, one read
        client.expect_ack()
        reply = client.read_reply(timeout=5)
        assert re.fullmatch(rb"T02(?:[0-9a-f]{2}:[0-9a-f]+;)*thread:p[0-9a-f]+\.[0-9a-f]+;core:[0-9a-f]+;", reply), reply
        assert process_state(server.pid) == "t"
    finally:
        client.close()
        server.stop()


def test_sigterm_ends_the_server_promptly_and_kills_the_program(programs, tmp_path):
    server = start_server(programs.spin, [], tmp_path / "server.log")
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    status = server.wait_exit(timeout=3)
    if status is None:
        server.proc.kill()  # the tracee dies with it (PTRACE_O_EXITKILL)
        server.proc.wait()
    assert status == 0, f"the server was still running {time.monotonic() - start:.1f} s after SIGTERM"
    assert process_state(server.pid) in (None, "Z")  # killed (init reaps it once the server is gone)
