"""lldb's packets, sent raw to gdbstub and to lldb-server serving the same program, each reply
checked against the kernel's view (/proc/PID/...) and against lldb-server's answer: the same
keys, the same value formats, and the same values where the two must agree.

Both servers start the program with the same environment and working directory, and both
disable address-space randomisation, so the two inferiors have one memory layout. The client
speaks as lldb does: '+', QStartNoAckMode, lldb's qSupported, then lldb's start-up queries.

Register numbers differ by design: gdbstub numbers registers as its target.xml does (gdb's
layout: eflags is 32 bits, then cs, ss, ds, es, fs, gs), lldb-server as its own description
(rflags and the segment registers are 64 bits, cs, fs, gs, ss, ds, es). Register values are
compared by name, through each server's own target.xml.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from raw_rsp import LLDB_QSUPPORTED
from rsp_client import Client as RawClient

from packets import framing

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("lldb-server") is None,
                       reason="lldb-server is not installed (make setup installs lldb)"),
]

# What lldb 14 sends after qSupported, in its order (see the lldb captures).
LLDB_STARTUP = (b"QThreadSuffixSupported", b"QListThreadsInStopReply", b"qHostInfo", b"vCont?",
                b"QEnableErrorStrings", b"qProcessInfo", b"?")
KINDS = ("lldb-server", "gdbstub")
GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "rip")
ADDR_NO_RANDOMIZE = 0x0040000


def environment(cwd: Path) -> dict[str, str]:
    """One environment for both servers and so for both inferiors. PWD is set because
    gdbstub starts programs through /bin/sh, which exports it: with it set beforehand the
    two inferiors get environments of one size, so one stack layout."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C", "PWD": str(cwd)}


# -- a client that speaks as lldb does ----------------------------------------------------------------

class Client(RawClient):
    """The shared raw client, opening a session as lldb does."""

    def __init__(self, port: int) -> None:
        super().__init__(RawClient.connect(port).sock)

    def start_like_lldb(self) -> dict[bytes, bytes]:
        """lldb's opening: ack, QStartNoAckMode, qSupported, its start-up queries."""
        self.sock.sendall(b"+")
        replies = {b"QStartNoAckMode": self.request(b"QStartNoAckMode")}
        assert replies[b"QStartNoAckMode"] == b"OK"
        self.no_ack = True
        replies[b"qSupported"] = self.request(LLDB_QSUPPORTED)
        for packet in LLDB_STARTUP:
            replies[packet] = self.request(packet)
        return replies

    def xfer(self, obj: str, annex: str, chunk: int = 0x7FFF) -> bytes:
        return super().xfer(obj, annex, chunk)


# -- servers -----------------------------------------------------------------------------------------

@dataclass
class Server:
    kind: str
    proc: subprocess.Popen
    port: int
    pid: int | None  # the inferior's, once there is one
    stderr: Path

    def stop(self) -> None:
        for sig, wait in ((None, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)


def gdbstub_argv() -> list[str]:
    script = Path(sys.executable).parent / "gdbstub"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gdbstub"]


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def start(kind: str, argv: list[str], cwd: Path) -> Server:
    """Start `kind` serving `argv` (or nothing: lldb-server waits for A or vAttach)."""
    log = cwd / f"{kind}.stderr"
    err = open(log, "wb")
    if kind == "gdbstub":
        proc = subprocess.Popen([*gdbstub_argv(), "--once", "127.0.0.1:0", *argv], cwd=cwd,
                                env=environment(cwd),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 20
        while True:
            text = log.read_text(errors="replace")
            port = re.search(r"Listening on port (\d+)", text)
            if port:
                pid = re.search(r"created; pid = (\d+)", text)
                return Server(kind, proc, int(port.group(1)), int(pid.group(1)) if pid else None, log)
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"gdbstub did not start:\n{text}")
            time.sleep(0.02)
    read_fd, write_fd = os.pipe()
    tail = ["--", *argv] if argv else []
    proc = subprocess.Popen(["lldb-server", "gdbserver", "127.0.0.1:0", "--pipe", str(write_fd),
                             *tail], cwd=cwd, env=environment(cwd), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, pass_fds=[write_fd])
    os.close(write_fd)
    data = b""
    deadline = time.monotonic() + 20
    while b"\0" not in data and time.monotonic() < deadline and proc.poll() is None:
        if select.select([read_fd], [], [], 0.2)[0]:
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            data += chunk
    os.close(read_fd)
    if not data.split(b"\0")[0].isdigit():
        proc.kill()
        raise AssertionError(f"lldb-server did not start: {log.read_text(errors='replace')}")
    children = _children(proc.pid)
    return Server(kind, proc, int(data.split(b"\0")[0]), children[0] if children else None, log)


@contextlib.contextmanager
def serving(kind: str, argv: list[str], cwd: Path) -> Iterator[Server]:
    server = start(kind, argv, cwd)
    try:
        yield server
    finally:
        server.stop()
        if server.pid is not None and _alive(server.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


# -- parsing -----------------------------------------------------------------------------------------

def pairs(reply: bytes) -> dict[str, str]:
    """'key:value;key:value;' as a dict (a key that repeats keeps its last value)."""
    out = {}
    for item in reply.decode().split(";"):
        if item:
            key, _, value = item.partition(":")
            out[key] = value
    return out


def stop_pairs(reply: bytes) -> tuple[int, dict[str, str]]:
    assert reply[:1] == b"T", reply[:100]
    return int(reply[1:3], 16), pairs(reply[3:])


def unhex(text: str) -> str:
    return bytes.fromhex(text).decode()


def le(hexbytes: str) -> int:
    return int.from_bytes(bytes.fromhex(hexbytes), "little")


def register_names(client: Client) -> dict[int, ET.Element]:
    """regnum -> <reg> element, from the server's target.xml (following includes)."""
    def walk(document: bytes) -> list[ET.Element]:
        regs = []
        for element in ET.fromstring(document).iter():
            if element.tag == "reg":
                regs.append(element)
            elif element.tag.endswith("include"):
                regs += walk(client.xfer("features", element.get("href")))
        return regs

    table, number = {}, 0
    for reg in walk(client.xfer("features", "target.xml")):
        number = int(reg.get("regnum", number))
        table[number] = reg
        number += 1
    return table


def maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    regions = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(None, 5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        regions.append((start, end, fields[1], int(fields[2], 16),
                        fields[5].strip() if len(fields) > 5 else ""))
    return regions


def load_base(pid: int, path: str) -> int:
    return min(start for start, _, _, offset, name in maps(pid) if name == path and offset == 0)


def symbol(program: Path, name: str) -> int:
    listing = subprocess.run(["nm", str(program)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in {program}")


def proc_mem(pid: int, addr: int, length: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(addr)
        return mem.read(length)


# -- the two stopped inferiors -------------------------------------------------------------------------

@dataclass
class Peer:
    """One server, its inferior stopped at main, and what it answered on the way."""

    kind: str
    server: Server
    client: Client
    pid: int
    startup: dict[bytes, bytes]
    initial_stop: bytes
    main_stop: bytes
    regs: dict[int, ET.Element]
    base: int

    def regnum(self, name: str) -> int:
        return next(n for n, reg in self.regs.items() if reg.get("name") == name)

    def tid(self) -> int:
        return int(stop_pairs(self.main_stop)[1]["thread"], 16)


@contextlib.contextmanager
def stopped_at_main(program: Path, cwd: Path) -> Iterator[dict[str, Peer]]:
    """Both servers on `program`, each spoken to as lldb does and run to a breakpoint at main."""
    main = symbol(program, "main")
    out: dict[str, Peer] = {}
    with contextlib.ExitStack() as stack:
        for kind in KINDS:
            server = stack.enter_context(serving(kind, [str(program)], cwd))
            client = Client(server.port)
            stack.callback(client.close)
            startup = client.start_like_lldb()
            pid = int(pairs(startup[b"qProcessInfo"])["pid"], 16)
            regs = register_names(client)
            base = load_base(pid, str(program))
            assert client.request(b"Z0,%x,1" % (base + main)) == b"OK"
            main_stop = client.resume(b"c")
            assert client.request(b"z0,%x,1" % (base + main)) == b"OK"
            out[kind] = Peer(kind, server, client, pid, startup, startup[b"?"], main_stop,
                             regs, base)
        yield out
        for peer in out.values():
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                peer.client.request(b"k", timeout=5)


@pytest.fixture(scope="module")
def peers(programs, tmp_path_factory) -> Iterator[dict[str, Peer]]:
    with stopped_at_main(programs.simple, tmp_path_factory.mktemp("lldb_packets")) as out:
        yield out


def both(peers: dict[str, Peer], packet: bytes) -> tuple[bytes, bytes]:
    """The reply of lldb-server, then of gdbstub, to `packet`."""
    return peers["lldb-server"].client.request(packet), peers["gdbstub"].client.request(packet)


# -- the handshake --------------------------------------------------------------------------------------

def test_same_inferior_state(peers) -> None:
    """The premise of every comparison below: both inferiors run one program at one address."""
    ref, cand = peers["lldb-server"], peers["gdbstub"]
    assert ref.base == cand.base
    assert maps(ref.pid)[0][:2] == maps(cand.pid)[0][:2]


def test_start_no_ack_mode_and_qsupported(peers) -> None:
    for peer in peers.values():
        features = peer.startup[b"qSupported"].decode().split(";")
        assert "QStartNoAckMode+" in features
        for wanted in ("native-signals+", "QThreadSuffixSupported+", "QListThreadsInStopReply+",
                       "qEcho+", "qXfer:features:read+", "qXfer:libraries-svr4:read+",
                       "QPassSignals+"):
            assert wanted in features, (peer.kind, features)
        size = next(f for f in features if f.startswith("PacketSize="))
        assert int(size.split("=")[1], 16) >= 0x4000, (peer.kind, size)


def test_thread_suffix_and_threads_in_stop_reply(peers) -> None:
    for peer in peers.values():
        assert peer.startup[b"QThreadSuffixSupported"] == b"OK"
        assert peer.startup[b"QListThreadsInStopReply"] == b"OK"
        # With the suffix, register reads name their thread.
        rip = peer.regnum("rip")
        value = peer.client.request(b"p%x;thread:%x;" % (rip, peer.tid()))
        assert le(value.decode()) == peer.base + symbol(Path(proc_exe(peer.pid)), "main"), peer.kind
        # And stop replies list the threads.
        assert "threads" in stop_pairs(peer.main_stop)[1]


def proc_exe(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def test_qhostinfo(peers) -> None:
    ref = pairs(peers["lldb-server"].startup[b"qHostInfo"])
    cand = pairs(peers["gdbstub"].startup[b"qHostInfo"])
    assert unhex(cand["triple"]) == "x86_64-pc-linux-gnu"
    assert (cand["ptrsize"], cand["endian"]) == ("8", "little")
    assert unhex(cand["hostname"]) == socket.gethostname()
    assert unhex(cand["os_build"]) == os.uname().release
    assert unhex(cand["os_kernel"]) == os.uname().version
    # Same host: every key and every value as lldb-server's.
    assert cand == ref


def test_qprocessinfo(peers) -> None:
    ref = pairs(peers["lldb-server"].startup[b"qProcessInfo"])
    for peer in peers.values():
        info = pairs(peer.startup[b"qProcessInfo"])
        assert list(info) == list(ref), peer.kind
        pid = int(info["pid"], 16)
        assert pid == peer.pid
        if peer.server.pid is not None:
            assert pid == peer.server.pid
        status = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        assert int(info["parent-pid"], 16) == int(status["PPid"])
        uid, euid = (int(x) for x in status["Uid"].split()[:2])
        gid, egid = (int(x) for x in status["Gid"].split()[:2])
        assert [int(info[k], 16) for k in ("real-uid", "effective-uid", "real-gid",
                                           "effective-gid")] == [uid, euid, gid, egid]
        for key in ("triple", "ostype", "endian", "ptrsize"):
            assert info[key] == ref[key], (peer.kind, key)


def test_vcont_query(peers) -> None:
    for peer in peers.values():
        actions = peer.startup[b"vCont?"].decode().split(";")
        assert actions[0] == "vCont" and {"c", "C", "s", "S"} <= set(actions[1:]), peer.kind


# -- stop replies ---------------------------------------------------------------------------------------

def _named_registers(peer: Peer, stop: dict[str, str]) -> dict[str, str]:
    return {peer.regs[int(k, 16)].get("name"): v for k, v in stop.items()
            if re.fullmatch(r"[0-9a-f]{2}", k)}


@pytest.mark.parametrize("which", ["initial_stop", "main_stop"])
def test_stop_reply(peers, which: str) -> None:
    ref_peer, cand_peer = peers["lldb-server"], peers["gdbstub"]
    ref_sig, ref = stop_pairs(getattr(ref_peer, which))
    sig, cand = stop_pairs(getattr(cand_peer, which))
    assert sig == ref_sig == (signal.SIGSTOP if which == "initial_stop" else signal.SIGTRAP)
    # The same keys, in the same order, registers aside (numbered each server's own way).
    keys = [k for k in cand if not re.fullmatch(r"[0-9a-f]{2}", k)]
    assert keys == [k for k in ref if not re.fullmatch(r"[0-9a-f]{2}", k)]
    assert int(cand["thread"], 16) == cand_peer.pid
    assert cand["name"] == ref["name"] == "simple"
    assert cand["threads"] == cand["thread"]
    assert cand["reason"] == ref["reason"] == ("signal" if which == "initial_stop" else "breakpoint")
    named = _named_registers(cand_peer, cand)
    ref_named = _named_registers(ref_peer, ref)
    # All general registers expedited; gdb's description calls rflags 'eflags'.
    assert set(named) - {"eflags"} == set(ref_named) - {"rflags"}
    assert set(GPRS) <= set(named)
    for name in GPRS:
        assert len(named[name]) == 16, name
    assert int(cand["thread-pcs"], 16) == le(named["rip"])
    assert int(ref["thread-pcs"], 16) == le(ref_named["rip"])
    # One program, one layout, one environment: the registers that locate the stop agree.
    for name in ("rip", "rsp", "rbp"):
        assert le(named[name]) == le(ref_named[name]), name
    if which != "main_stop":
        return
    # Each expedited value is what a register read says now (the program is still there).
    for name in GPRS:
        read = cand_peer.client.request(b"p%x;thread:%x;" % (cand_peer.regnum(name), cand_peer.pid))
        assert read.decode() == named[name], name


def test_initial_stop_general_registers_equal_lldb_server(peers) -> None:
    ref = _named_registers(peers["lldb-server"], stop_pairs(peers["lldb-server"].initial_stop)[1])
    cand = _named_registers(peers["gdbstub"], stop_pairs(peers["gdbstub"].initial_stop)[1])
    assert {n: le(cand[n]) for n in GPRS} == {n: le(ref[n]) for n in GPRS}


def test_main_stop_general_registers_equal_lldb_server(peers) -> None:
    ref = _named_registers(peers["lldb-server"], stop_pairs(peers["lldb-server"].main_stop)[1])
    cand = _named_registers(peers["gdbstub"], stop_pairs(peers["gdbstub"].main_stop)[1])
    assert {n: le(cand[n]) for n in GPRS} == {n: le(ref[n]) for n in GPRS}


def test_thread_stop_info(peers) -> None:
    for peer in peers.values():
        reply = peer.client.request(b"qThreadStopInfo%x" % peer.tid())
        sig, info = stop_pairs(reply)
        assert sig == signal.SIGTRAP and info["reason"] == "breakpoint", (peer.kind, reply[:200])


# -- jThreadsInfo ----------------------------------------------------------------------------------------

def threads_info(peer: Peer) -> list[dict]:
    reply = peer.client.request(b"jThreadsInfo")
    return json.loads(framing.unescape_binary(reply))


def test_jthreadsinfo(peers) -> None:
    ref_peer, cand_peer = peers["lldb-server"], peers["gdbstub"]
    ref, cand = threads_info(ref_peer), threads_info(cand_peer)
    assert [sorted(t) for t in cand] == [sorted(t) for t in ref]
    (thread,), (ref_thread,) = cand, ref
    assert thread["tid"] == cand_peer.pid and thread["name"] == "simple"
    assert (thread["reason"], thread["signal"]) == (ref_thread["reason"], ref_thread["signal"]) \
        == ("breakpoint", signal.SIGTRAP)
    names = {cand_peer.regs[int(n)].get("name"): v for n, v in thread["registers"].items()}
    ref_names = {ref_peer.regs[int(n)].get("name"): v for n, v in ref_thread["registers"].items()}
    assert set(names) == set(ref_names) == {"rip", "rsp", "rbp"}
    assert {n: le(v) for n, v in names.items()} == {n: le(v) for n, v in ref_names.items()}


def test_jthreadextendedinfo(peers) -> None:
    """Unsupported (empty reply), as lldb expects of a Linux server: lldb asks for it only on
    Darwin, for libdispatch queues. Not compared: lldb-server 14 crashes (SIGSEGV) on it."""
    peer = peers["gdbstub"]
    assert peer.client.request(b'jThreadExtendedInfo:{"thread":%d}' % peer.tid()) == b""
    assert peer.client.request(b"qC") == b"QC%x" % peer.tid()


def test_watchpoint_stop_reply(programs, tmp_path) -> None:
    """A write watchpoint on `counter`: reason and description (address, index, hit address)
    as lldb-server's, in the stop reply and in jThreadsInfo."""
    with stopped_at_main(programs.simple, tmp_path) as fresh:
        replies = {}
        for kind, peer in fresh.items():
            counter = peer.base + symbol(programs.simple, "counter")
            assert peer.client.request(b"Z2,%x,4" % counter) == b"OK"
            replies[kind] = (peer.client.resume(b"c"), threads_info(peer), counter)
    (ref, ref_info, _), (cand, cand_info, counter) = replies["lldb-server"], replies["gdbstub"]
    sig, stop = stop_pairs(cand)
    ref_sig, ref_stop = stop_pairs(ref)
    assert sig == ref_sig == signal.SIGTRAP
    assert stop["reason"] == ref_stop["reason"] == "watchpoint"
    address, index, hit = unhex(stop["description"]).split()
    assert (int(address), int(index)) == (counter, 0)
    assert stop["description"] == ref_stop["description"]
    assert stop["thread-pcs"] == ref_stop["thread-pcs"]
    assert cand_info[0]["description"] == ref_info[0]["description"] == unhex(stop["description"])
    assert cand_info[0]["reason"] == "watchpoint"


# -- registers -------------------------------------------------------------------------------------------

def register_infos(client: Client) -> list[dict[str, str]]:
    infos = []
    for number in range(4096):
        reply = client.request(b"qRegisterInfo%x" % number)
        if reply.startswith(b"E"):
            break
        infos.append(pairs(reply))
    return infos


@pytest.fixture(scope="module")
def register_info(peers) -> dict[str, list[dict[str, str]]]:
    return {kind: register_infos(peer.client) for kind, peer in peers.items()}


def test_qregisterinfo_matches_target_xml(peers, register_info) -> None:
    """gdbstub's qRegisterInfo numbering is its target.xml's, and agrees with it."""
    peer = peers["gdbstub"]
    infos = register_info["gdbstub"]
    assert [i["name"] for i in infos] == [peer.regs[n].get("name") for n in sorted(peer.regs)]
    for number, info in enumerate(infos):
        assert int(info["bitsize"]) == int(peer.regs[number].get("bitsize")), info


def test_qregisterinfo_offsets_locate_registers_in_g(peers, register_info) -> None:
    """lldb cuts registers out of a 'g' reply at the offsets qRegisterInfo gives."""
    peer = peers["gdbstub"]
    g = bytes.fromhex(peer.client.request(b"g;thread:%x;" % peer.tid()).decode())
    checked = []
    for number, info in enumerate(register_info["gdbstub"]):
        offset, size = int(info["offset"]), int(info["bitsize"]) // 8
        if offset + size > len(g):
            continue  # past what 'g' carries; lldb reads those one by one
        single = bytes.fromhex(peer.client.request(b"p%x;thread:%x;" % (number, peer.tid())).decode())
        assert g[offset:offset + size] == single, info["name"]
        checked.append(info["name"])
    assert set(GPRS) | {"eflags", "cs", "ss", "ds", "es", "fs", "gs"} <= set(checked)


def _by_name(infos: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {i["name"]: i for i in infos}


def test_qregisterinfo_general_registers_as_lldb_server(register_info) -> None:
    ref, cand = _by_name(register_info["lldb-server"]), _by_name(register_info["gdbstub"])
    # Offsets index each server's own register block; the rest describes the register.
    for name in GPRS:
        for key in ("bitsize", "encoding", "format", "set", "ehframe", "dwarf", "generic"):
            assert cand[name].get(key) == ref[name].get(key), (name, key)
    assert list(cand["rax"]) == list(ref["rax"])
    # gdb's eflags (32 bits) is lldb-server's rflags: same numbers, same role.
    for key in ("encoding", "format", "set", "ehframe", "dwarf", "generic"):
        assert cand["eflags"].get(key) == ref["rflags"].get(key), key
    for name in ("cs", "ss", "ds", "es", "fs", "gs"):
        for key in ("encoding", "format", "set", "ehframe", "dwarf"):
            assert cand[name].get(key) == ref[name].get(key), (name, key)
    for name in ("st0", "st7", "xmm0", "xmm15", "mxcsr"):
        for key in ("bitsize", "encoding", "format", "ehframe", "dwarf"):
            assert cand[name].get(key) == ref[name].get(key), (name, key)
    # gdb describes the x87 control registers as 32 bits wide, lldb-server as 16.
    for name in ("fctrl", "fstat"):
        for key in ("encoding", "format", "ehframe", "dwarf"):
            assert cand[name].get(key) == ref[name].get(key), (name, key)


# -- memory -----------------------------------------------------------------------------------------------

def region(reply: bytes) -> dict[str, str]:
    info = pairs(reply)
    if "name" in info:
        info["name"] = unhex(info["name"])
    return info


def expected_region(pid: int, addr: int) -> dict[str, str]:
    """What /proc/PID/maps says about `addr`, in qMemoryRegionInfo's terms."""
    previous = 0
    for start, end, perms, _, name in maps(pid):
        if addr < start:
            return {"start": f"{previous:x}", "size": f"{start - previous:x}"}
        if addr < end:
            out = {"start": f"{start:x}", "size": f"{end - start:x}"}
            permissions = "".join(c for c in perms[:3] if c != "-")
            if permissions:
                out["permissions"] = permissions
            out["flags"] = ""
            if name:
                out["name"] = name
            return out
        previous = end
    return {"start": f"{previous:x}", "size": f"{(1 << 64) - previous:x}"}


def probe_addresses(peer: Peer, program: Path) -> dict[str, int]:
    regions = maps(peer.pid)
    named = {}
    for start, end, perms, offset, name in regions:
        named.setdefault(name, []).append((start, end, perms))
    libc = next(n for n in named if "/libc.so" in n or "/libc-" in n)
    exe_end = max(end for start, end, _ in named[str(program)])
    stop = stop_pairs(peer.main_stop)[1]
    rsp = le(_named_registers(peer, stop)["rsp"])
    return {
        "null": 0,
        "exe-header": peer.base,
        "main": peer.base + symbol(program, "main"),
        "buf": peer.base + symbol(program, "buf"),
        "after-exe": exe_end,
        "libc": named[libc][0][0],
        "libc-text": next(s for s, _, p in named[libc] if "x" in p) + 0x100,
        "stack": rsp,
        "below-stack-pointer": rsp - 0x900,
        "vdso": named["[vdso]"][0][0],
        "vvar": named["[vvar]"][0][0] if "[vvar]" in named else named["[vdso]"][0][0] - 1,
        "above-stack": 0x7FFFFFFFF000,
        "non-canonical": 0x800000000000,
        "vsyscall": 0xFFFFFFFFFF600000,
    }


def test_qmemoryregioninfo(peers, programs) -> None:
    """Mapped regions: the same answer as lldb-server's, key for key. Unmapped addresses: the
    gap with no permissions, ending where lldb-server's ends; gdbstub starts it where the gap
    starts (as /proc/PID/maps has it), lldb-server 14 at the address asked about."""
    ref_peer, cand_peer = peers["lldb-server"], peers["gdbstub"]
    places = probe_addresses(cand_peer, programs.simple)
    places["inside-a-gap"] = places["after-exe"] + 0x1000
    places["top"] = 0xFFFFFFFFFFFFFF00
    for what, addr in places.items():
        ref = region(ref_peer.client.request(b"qMemoryRegionInfo:%x" % addr))
        cand = region(cand_peer.client.request(b"qMemoryRegionInfo:%x" % addr))
        assert cand == expected_region(cand_peer.pid, addr), what
        assert int(cand["start"], 16) <= addr < int(cand["start"], 16) + int(cand["size"], 16)
        if "permissions" in cand:
            assert cand == ref, what
            # Keys in lldb-server's order: lldb does not care, but a reader of logs does.
            assert list(cand) == list(ref), what
            continue
        assert set(cand) == set(ref) == {"start", "size"}, what
        assert int(ref["start"], 16) == addr, what
        end = int(cand["start"], 16) + int(cand["size"], 16)
        ref_end = int(ref["start"], 16) + int(ref["size"], 16)
        if what == "top":
            # lldb-server ends the last gap at 2^64-1, a byte short of the top.
            assert (end, ref_end) == (1 << 64, (1 << 64) - 1)
        else:
            assert end == ref_end, what


def memory_reads(peer: Peer, addr: int, length: int) -> tuple[bytes, bytes, bytes]:
    x = peer.client.request(b"x%x,%x" % (addr, length))
    m = peer.client.request(b"m%x,%x" % (addr, length))
    assert not re.fullmatch(rb"E[0-9a-fA-F]{2}(;.*)?", x), (peer.kind, hex(addr), length, x)
    return framing.unescape_binary(x), bytes.fromhex(m.decode()), proc_mem(peer.pid, addr, length)


def test_x_reads_equal_m_reads_and_proc_mem(peers, programs) -> None:
    for peer in peers.values():
        places = probe_addresses(peer, programs.simple)
        for what in ("main", "buf", "below-stack-pointer", "libc-text", "exe-header"):
            for length in (1, 7, 0x100, 0x800):
                x, m, mem = memory_reads(peer, places[what], length)
                assert x == m == mem, (peer.kind, what, length)
    # Bytes that need escaping ('}', '#', '$', '*') come back intact.
    ref, cand = peers["lldb-server"], peers["gdbstub"]
    text = ref.base + symbol(programs.simple, "main")
    assert memory_reads(cand, text, 0x2000)[0] == memory_reads(ref, text, 0x2000)[0]


def test_x_zero_length_probe(peers) -> None:
    ref, cand = both(peers, b"x0,0")
    assert cand == ref == b"OK"


def test_x_and_m_on_unmapped_memory(peers) -> None:
    for packet in (b"x1,10", b"m1,10"):
        ref, cand = both(peers, packet)
        for reply in (ref, cand):
            assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;[0-9a-fA-F]+)?", reply), (packet, reply)


def test_x_read_running_into_unmapped_memory(peers, programs) -> None:
    """A read that starts mapped and runs past the mapping: gdbstub answers the mapped part
    (as gdbserver does; lldb takes a short `x` reply as a short read); lldb-server 14 answers
    E08 for the whole read. Either way lldb gets no byte that is not in the program."""
    ref_peer, cand_peer = peers["lldb-server"], peers["gdbstub"]
    exe_end = probe_addresses(cand_peer, programs.simple)["after-exe"]
    if expected_region(cand_peer.pid, exe_end).get("permissions"):
        pytest.fail("the layout changed: the program's last mapping is followed by another")
    mapped = proc_mem(cand_peer.pid, exe_end - 0x10, 0x10)
    for packet in (b"x", b"m"):
        ref = ref_peer.client.request(packet + b"%x,20" % (exe_end - 0x10))
        cand = cand_peer.client.request(packet + b"%x,20" % (exe_end - 0x10))
        decode = framing.unescape_binary if packet == b"x" else (lambda r: bytes.fromhex(r.decode()))
        assert decode(cand) == mapped, packet
        assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;[0-9a-fA-F]+)?", ref) or decode(ref) == mapped


# -- small queries ---------------------------------------------------------------------------------------

def test_qwatchpointsupportinfo(peers) -> None:
    ref, cand = both(peers, b"qWatchpointSupportInfo:")
    assert cand == ref == b"num:4;"


def test_qgetworkingdir(peers) -> None:
    ref, cand = both(peers, b"qGetWorkingDir")
    assert unhex(cand.decode()) == os.readlink(f"/proc/{peers['gdbstub'].pid}/cwd")
    assert cand == ref


def test_qshlibinfoaddr(peers) -> None:
    ref, cand = both(peers, b"qShlibInfoAddr")
    assert cand == ref == b""


def test_qfileloadaddress(peers, programs) -> None:
    cand_peer = peers["gdbstub"]
    libc = next(name for _, _, _, _, name in maps(cand_peer.pid) if re.search(r"/libc[.-]", name))
    for path in (str(programs.simple), libc):
        ref, cand = both(peers, b"qFileLoadAddress:" + path.encode().hex().encode())
        assert int(cand, 16) == load_base(cand_peer.pid, path), path
        # lldb-server pads to 16 digits; both are hex numbers and lldb reads them as such.
        assert int(cand, 16) == int(ref, 16), path


def test_qfileloadaddress_of_a_file_not_loaded(peers) -> None:
    ref, cand = both(peers, b"qFileLoadAddress:" + b"/no/such/lib.so".hex().encode())
    assert cand[:3] == ref[:3] == b"E45"


def test_error_strings(peers) -> None:
    """After QEnableErrorStrings an error may carry ';' and its text in hex."""
    for peer in peers.values():
        assert peer.startup[b"QEnableErrorStrings"] == b"OK"
        reply = peer.client.request(b"qRegisterInfo%x" % 100000)
        assert re.fullmatch(rb"E[0-9a-fA-F]{2}(;[0-9a-fA-F]+)?", reply), (peer.kind, reply)
        if b";" in reply:
            assert unhex(reply.split(b";")[1].decode()).isprintable()


def test_qecho(peers) -> None:
    ref, cand = both(peers, b"qEcho:12")
    assert ref == b"qEcho:12"
    assert cand == ref


# -- launching and attaching -------------------------------------------------------------------------------

def _a_packet(argv: list[str]) -> bytes:
    parts = []
    for index, arg in enumerate(argv):
        encoded = arg.encode().hex()
        parts.append(f"{len(encoded)},{index},{encoded}")
    return ("A" + ",".join(parts)).encode()


def _launch(kind: str, programs, tmp_path: Path) -> dict:
    """lldb's launch sequence: settings packets, A, qLaunchSuccess, then run to the end.

    lldb-server starts with no program and waits for A. gdbstub always starts with one and
    refuses A while it debugs it, and a plain 'k' ends its session: so it first gets vKill."""
    work = tmp_path / kind / "work"
    work.mkdir(parents=True)
    out = tmp_path / kind / "stdout"
    argv = [] if kind == "lldb-server" else [str(programs.spin)]
    with serving(kind, argv, tmp_path / kind) as server:
        client = Client(server.port)
        try:
            client.start_like_lldb()
            if server.pid is not None:
                assert client.request(b"vKill;%x" % server.pid) == b"OK"
            replies = {
                "QSetDisableASLR": client.request(b"QSetDisableASLR:1"),
                "QSetSTDIN": client.request(b"QSetSTDIN:" + b"/dev/null".hex().encode()),
                "QSetSTDOUT": client.request(b"QSetSTDOUT:" + str(out).encode().hex().encode()),
                "QSetSTDERR": client.request(b"QSetSTDERR:" + str(out).encode().hex().encode()),
                "QSetWorkingDir": client.request(b"QSetWorkingDir:" + str(work).encode().hex().encode()),
                "QEnvironment": client.request(b"QEnvironment:LLDB_PACKET_TEST=yes"),
                "QEnvironmentHexEncoded": client.request(
                    b"QEnvironmentHexEncoded:" + b"SPECIAL=a;b#c".hex().encode()),
            }
            replies["A"] = client.request(_a_packet([str(programs.simple), "7", "marker"]))
            replies["qLaunchSuccess"] = client.request(b"qLaunchSuccess")
            info = pairs(client.request(b"qProcessInfo"))
            pid = int(info["pid"], 16)
            server.pid = pid
            facts = {
                "cwd": os.readlink(f"/proc/{pid}/cwd"),
                "exe": os.readlink(f"/proc/{pid}/exe"),
                "environ": [v for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if v],
                "personality": int(Path(f"/proc/{pid}/personality").read_text(), 16),
                "stdin": os.readlink(f"/proc/{pid}/fd/0"),
                "stdout": os.readlink(f"/proc/{pid}/fd/1"),
                "stop": client.request(b"?"),
            }
            facts["exit"] = client.resume(b"c")
        finally:
            client.close()
    facts["output"] = out.read_text()
    facts["marker"] = (work / "marker").read_text() if (work / "marker").exists() else None
    facts["replies"] = replies
    return facts


@pytest.fixture(scope="module")
def launches(programs, tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("launch")
    return {kind: _launch(kind, programs, tmp) for kind in KINDS}


def test_launch_with_a_and_settings(launches, programs) -> None:
    ref, cand = launches["lldb-server"], launches["gdbstub"]
    assert cand["replies"] == ref["replies"]
    assert set(cand["replies"].values()) == {b"OK"}
    work = Path(ref["cwd"]).parent.parent / "gdbstub" / "work"
    assert cand["cwd"] == str(work)
    assert cand["exe"] == str(programs.simple)
    assert b"LLDB_PACKET_TEST=yes" in cand["environ"] and b"SPECIAL=a;b#c" in cand["environ"]
    assert cand["personality"] & ADDR_NO_RANDOMIZE
    assert cand["stdin"] == "/dev/null"
    assert cand["stdout"] == str(work.parent / "stdout")
    assert cand["exit"] == ref["exit"] == b"W07"
    assert cand["output"] == ref["output"] == "counter=15 buf=Hello origin=18,4\n"
    assert cand["marker"] == ref["marker"] == "counter=15 buf=Hello\n"
    sig, stop = stop_pairs(cand["stop"])
    ref_sig, ref_stop = stop_pairs(ref["stop"])
    assert sig == ref_sig == signal.SIGSTOP
    assert [k for k in stop if len(k) > 2] == [k for k in ref_stop if len(k) > 2]


def test_launch_environment_is_what_the_client_sent(launches) -> None:
    assert sorted(launches["gdbstub"]["environ"]) == sorted(launches["lldb-server"]["environ"])


def test_launch_failure_is_reported_by_qlaunchsuccess(programs, tmp_path) -> None:
    replies = {}
    for kind in KINDS:
        argv = [] if kind == "lldb-server" else [str(programs.spin)]
        (tmp_path / kind).mkdir()
        with serving(kind, argv, tmp_path / kind) as server:
            client = Client(server.port)
            try:
                client.start_like_lldb()
                if server.pid is not None:
                    assert client.request(b"vKill;%x" % server.pid) == b"OK"
                a = client.request(_a_packet([str(tmp_path / "no-such-program")]))
                replies[kind] = (a, client.request(b"qLaunchSuccess"))
            finally:
                client.close()
    for kind, (a, success) in replies.items():
        # Either A itself or qLaunchSuccess says it failed, with an error.
        assert a.startswith(b"E") or success.startswith(b"E"), (kind, a, success)


def test_vattach_and_detach(programs, tmp_path) -> None:
    results = {}
    for kind in KINDS:
        spinner = subprocess.Popen([str(programs.spin)], stdin=subprocess.DEVNULL)
        argv = [] if kind == "lldb-server" else [str(programs.simple)]
        (tmp_path / kind).mkdir()
        try:
            time.sleep(0.1)
            with serving(kind, argv, tmp_path / kind) as server:
                client = Client(server.port)
                try:
                    client.start_like_lldb()
                    if server.pid is not None:  # gdbstub: no vAttach while it debugs a program
                        assert client.request(b"vKill;%x" % server.pid) == b"OK"
                    stop = client.request(b"vAttach;%x" % spinner.pid)
                    info = pairs(client.request(b"qProcessInfo"))
                    tracer = _tracer(spinner.pid)
                    detach = client.request(b"D")
                finally:
                    client.close()
            time.sleep(0.2)
            results[kind] = (stop, info, tracer, detach, _tracer(spinner.pid),
                             spinner.poll(), spinner.pid)
        finally:
            spinner.kill()
            spinner.wait(5)
    for kind, (stop, info, tracer, detach, tracer_after, status, pid) in results.items():
        sig, pairs_ = stop_pairs(stop)
        assert sig == signal.SIGSTOP and int(pairs_["thread"], 16) == pid, (kind, stop[:100])
        assert int(info["pid"], 16) == pid
        assert tracer != 0 and tracer_after == 0 and status is None, kind
        assert detach == b"OK", kind
    ref_keys = [k for k in stop_pairs(results["lldb-server"][0])[1] if len(k) > 2]
    assert [k for k in stop_pairs(results["gdbstub"][0])[1] if len(k) > 2] == ref_keys


def _tracer(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^TracerPid:\s+(\d+)", status, re.M).group(1))
