"""A stop is what it was when it happened: what the client negotiates later changes only how
replies are encoded, never the thread's registers, the reported stop, or where it resumes.

Each test stops a real program at a breakpoint under one client profile (gdb with swbreak,
gdb without it, lldb), changes the profile at the stop (a new qSupported of each kind, no-ack
mode, a qSupported with a bad checksum in no-ack mode, a second client), and then checks that
`g` and `?` are as before and that the program runs to its own exit code and output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from raw_rsp import GDB_QSUPPORTED, LLDB_QSUPPORTED, RunningServer, load_base, nm_address, same_registers, start_server
from rsp_client import Client

pytestmark = pytest.mark.timeout(60)

RIP = 16  # the PC's register number for gdb and lldb alike (the served description says so)
EXIT_CODE = 7


def connect(server: RunningServer, profile: str) -> Client:
    """A new connection, negotiated as the profile's client does."""
    client = server.connect()
    if profile == "lldb":
        # lldb asks for no-ack mode before anything else.
        assert client.request(b"QStartNoAckMode") == b"OK"
        client.no_ack = True
        client.request(LLDB_QSUPPORTED)
    elif profile == "gdb":
        client.request(GDB_QSUPPORTED)
    else:  # a gdb from before swbreak (7.9): it rewinds the PC over the int3 itself
        client.request(b"qSupported:multiprocess+;xmlRegisters=i386")
    return client


def change_profile(server: RunningServer, client: Client, change: str) -> Client:
    """Apply one profile change at the stop; returns the client to go on with."""
    if change == "qSupported-bare":
        client.request(b"qSupported")
    elif change == "qSupported-gdb":
        client.request(GDB_QSUPPORTED)
    elif change == "qSupported-lldb":
        client.request(LLDB_QSUPPORTED)
    elif change == "no-ack":
        if not client.no_ack:
            assert client.request(b"QStartNoAckMode") == b"OK"
            client.no_ack = True
    elif change == "no-ack-bad-checksum":
        if not client.no_ack:
            assert client.request(b"QStartNoAckMode") == b"OK"
            client.no_ack = True
        # In no-ack mode a packet is acted on whatever its checksum (as gdbserver does).
        client.send_raw(b"$qSupported#00")
        assert client.read_reply().startswith(b"PacketSize=")
    elif change == "second-client":
        client.close()
        client = server.connect()
        client.request(b"qSupported:xmlRegisters=i386")
    else:
        raise AssertionError(change)
    return client


def stop_pc(client: Client) -> int:
    return int.from_bytes(bytes.fromhex(client.request(b"p%x" % RIP).decode()), "little")


def stop_thread(reply: bytes) -> bytes:
    match = re.match(rb"T05.*thread:(?:p[0-9a-f]+\.)?([0-9a-f]+);", reply)
    assert match, reply
    return match.group(1)


CHANGES = ["qSupported-bare", "qSupported-gdb", "qSupported-lldb", "no-ack", "no-ack-bad-checksum",
           "second-client"]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("profile", ["gdb", "gdb-without-swbreak", "lldb"])
def test_profile_change_at_a_breakpoint_stop_changes_nothing(programs, tmp_path: Path, profile: str,
                                                             change: str) -> None:
    marker = tmp_path / "marker"
    server = start_server(programs.simple, [str(EXIT_CODE), str(marker)], tmp_path / "server.log", once=False)
    try:
        client = connect(server, profile)
        add = load_base(server.pid, programs.simple) + nm_address(programs.simple, "add")
        assert client.request(b"Z0,%x,1" % add) == b"OK"
        first = client.request(b"vCont;c")
        assert first.startswith(b"T05"), first
        thread = stop_thread(first)
        pc = stop_pc(client)
        if profile == "gdb-without-swbreak":
            assert pc == add + 1  # left past the int3, as gdbserver does for such a client
            assert b"swbreak" not in first
        else:
            assert pc == add
            assert (b"swbreak:" in first) == (profile == "gdb")
        registers = client.request(b"g")
        assert re.fullmatch(rb"[0-9a-fx]+", registers), registers[:80]

        client = change_profile(server, client, change)

        for _ in range(2):  # asking twice must not move anything either
            again = client.request(b"?")
            assert stop_thread(again) == thread, again
            assert same_registers(client.request(b"g"), registers)  # a bare qSupported: gdb's layout
        assert stop_pc(client) == pc

        # The client goes on from the breakpoint as gdb would: a PC left past the int3 is
        # rewound by the client itself, then the breakpoint is removed and the program resumes.
        if pc == add + 1:
            assert client.request(b"P%x=%s" % (RIP, add.to_bytes(8, "little").hex().encode())) == b"OK"
        removed = client.request(b"z0,%x,1" % add)
        # A client that leaves takes its breakpoints with it: the second finds none to remove.
        assert removed.startswith(b"E") if change == "second-client" else removed == b"OK", removed
        end = client.request(b"c")
        assert re.fullmatch(rb"W%02x(;process:[0-9a-f]+)?" % EXIT_CODE, end), end
        client.close()
    finally:
        server.stop()
    # What the program wrote itself: 1 + 2 + 3 + 4 + 5, and the store after the loop.
    assert marker.read_text() == "counter=15 buf=Hello\n"

