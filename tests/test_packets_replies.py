"""Reply builders, checked against replies captured from gdbserver 13 and lldb-server 14."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packets.commands import MalformedCommand
from packets.framing import unescape_binary
from packets.replies import (
    OK,
    console_output,
    error,
    exited,
    hex_decode,
    hex_encode,
    stop_reply,
    terminated,
    vfile_result,
    xfer_chunk,
)


def test_ok() -> None:
    assert OK == b"OK"


def test_error_codes() -> None:
    assert error(1) == b"E01"  # gdbserver's answer to Hgp0.0 with no process
    assert error(0xFF) == b"Eff"
    # The message only goes on the wire when the client enabled error strings.
    assert error(0xFF, "Invalid r_debug address") == b"Eff"


def test_error_with_text_matches_lldb_server() -> None:
    # lldb-server's reply to qXfer:libraries-svr4:read before the loader ran.
    assert (
        error(0xFF, "Invalid r_debug address", with_text=True)
        == b"Eff;496e76616c696420725f64656275672061646472657373"
    )


def test_error_code_must_fit_two_digits() -> None:
    with pytest.raises(ValueError):
        error(0x100)
    with pytest.raises(ValueError):
        error(-1)


def test_stop_reply_matches_gdbserver() -> None:
    # gdbserver's answer to '?' in gdb_vs_gdbserver.sequence.txt.
    pairs = [
        (b"06", b"0000000000000000"),
        (b"07", b"20e7ffffff7f0000"),
        (b"10", b"704bfef7ff7f0000"),
        (b"thread", b"p17d0.17d0"),
        (b"core", b"1"),
    ]
    assert stop_reply(5, pairs) == (
        b"T0506:0000000000000000;07:20e7ffffff7f0000;10:704bfef7ff7f0000;thread:p17d0.17d0;core:1;"
    )


def test_stop_reply_with_an_empty_value_and_lldb_signal() -> None:
    assert stop_reply(5, [(b"swbreak", b""), (b"thread", b"p21bd.21bd")]) == (
        b"T05swbreak:;thread:p21bd.21bd;"
    )
    assert stop_reply(0x13, [(b"thread", b"1bd1"), (b"name", b"demo")]) == (
        b"T13thread:1bd1;name:demo;"
    )
    assert stop_reply(2, []) == b"T02"


def test_exited_and_terminated() -> None:
    assert exited(0) == b"W00"  # gdbserver --multi, '?' with no process
    assert terminated(9) == b"X09"  # lldb-server after 'k'
    assert exited(0x7F, pid=0x2129) == b"W7f;process:2129"
    # gdbserver 13 sends "Xb;process:1edc" here; the specification's form has two digits.
    assert terminated(0xB, pid=0x1EDC) == b"X0b;process:1edc"


def test_console_output_matches_gdbserver() -> None:
    # The first line of gdbserver's 'monitor set debug 0' answer.
    assert console_output(b"Debug output disabled.\n") == (
        b"O4465627567206f75747075742064697361626c65642e0a"
    )


@pytest.mark.parametrize(
    "args, reply",
    [
        ((0,), b"F0"),  # vFile:setfs, vFile:close
        ((3,), b"F3"),  # vFile:open
        ((-1, 2), b"F-1,2"),  # vFile:open of a missing file: ENOENT
        ((0x47FF, None, b""), b"F47ff;"),
        ((2, None, b"\x00#"), b"F2;\x00}\x03"),
        ((-1, 0xD), b"F-1,d"),
    ],
)
def test_vfile_result(args: tuple, reply: bytes) -> None:
    assert vfile_result(*args) == reply


@given(attachment=st.binary(max_size=200))
def test_vfile_attachment_round_trip(attachment: bytes) -> None:
    reply = vfile_result(len(attachment), attachment=attachment)
    header, _, body = reply.partition(b";")
    assert header == b"F%x" % len(attachment)
    assert unescape_binary(body) == attachment


@pytest.mark.parametrize(
    "offset, length, reply",
    [
        (0, 4, b"mabcd"),
        (4, 4, b"lef"),
        (2, 4, b"lcdef"),  # reaches the end exactly
        (6, 4, b"l"),  # at the end
        (100, 4, b"l"),  # past the end
        (0, 0, b"m"),
    ],
)
def test_xfer_chunk(offset: int, length: int, reply: bytes) -> None:
    assert xfer_chunk(b"abcdef", offset, length) == reply


@given(document=st.binary(max_size=3000), length=st.integers(1, 700))
def test_xfer_chunks_reassemble_like_gdb(document: bytes, length: int) -> None:
    # gdb reads at increasing offsets until an 'l' reply.
    received = b""
    while True:
        reply = xfer_chunk(document, len(received), length)
        assert reply[:1] in (b"m", b"l")
        chunk = unescape_binary(reply[1:])
        assert len(chunk) <= length
        received += chunk
        if reply[:1] == b"l":
            break
    assert received == document


@given(data=st.binary(max_size=300))
def test_hex_round_trip(data: bytes) -> None:
    text = hex_encode(data)
    assert text == data.hex().encode()
    assert hex_decode(text) == data
    assert hex_decode(text.upper()) == data


@pytest.mark.parametrize("bad", [b"0", b"zz", b"0 1", b" 01", b"0x01", b"+1", b"1_2", b"\xff\xff"])
def test_hex_decode_rejects(bad: bytes) -> None:
    with pytest.raises(MalformedCommand):
        hex_decode(bad)
