"""Framing: the incremental decoder, frames, checksums, binary escaping and run-length encoding."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packets.framing import (
    Ack,
    BadChecksum,
    Decoder,
    Interrupt,
    Nak,
    Notification,
    Overlong,
    Packet,
    checksum,
    escape_binary,
    frame,
    frame_notification,
    rle_decode,
    rle_encode,
    unescape_binary,
)


def feed_in_pieces(decoder: Decoder, stream: bytes, cuts: list[int]) -> list[object]:
    """Feed ``stream`` split at the given offsets and collect every event."""
    events: list[object] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events


def feed_bytewise(decoder: Decoder, stream: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(stream)):
        events += decoder.feed(stream[i : i + 1])
    return events


# --- frames and checksums, against packets captured from gdb, lldb and their servers ---------


@pytest.mark.parametrize(
    "payload, wire",
    [
        (b"qSymbol::", b"$qSymbol::#5b"),
        (b"x555555557e00,200", b"$x555555557e00,200#da"),
        (b"Z0,7ffff7fcc060,1", b"$Z0,7ffff7fcc060,1#db"),
        (b"OK", b"$OK#9a"),
        (b"", b"$#00"),
        (b"jThreadsInfo", b"$jThreadsInfo#c1"),
        (b"X09", b"$X09#c1"),
        (b"Xb;process:1edc", b"$Xb;process:1edc#8b"),
    ],
)
def test_frame_matches_captured_packets(payload: bytes, wire: bytes) -> None:
    assert frame(payload) == wire
    assert Decoder().feed(wire) == [Packet(payload)]


def test_checksum_is_sum_modulo_256() -> None:
    assert checksum(b"") == 0
    assert checksum(b"\xff\x02") == 1
    assert checksum(b"OK") == (0x4F + 0x4B) & 0xFF


def test_frame_notification() -> None:
    assert frame_notification(b"Stop:T05") == b"%Stop:T05#" + b"%02x" % checksum(b"Stop:T05")
    assert Decoder().feed(frame_notification(b"Stop:T05")) == [Notification(b"Stop:T05")]


# --- the decoder, on arbitrary streams ------------------------------------------------------

escaped_payloads = st.binary(max_size=300).map(escape_binary)
stream_items = st.one_of(
    escaped_payloads.map(Packet),
    escaped_payloads.map(Notification),
    st.just(Ack()),
    st.just(Nak()),
    st.just(Interrupt()),
)


def encode_item(item: object) -> bytes:
    if isinstance(item, Packet):
        return frame(item.payload)
    if isinstance(item, Notification):
        return frame_notification(item.payload)
    return {Ack(): b"+", Nak(): b"-", Interrupt(): b"\x03"}[item]


@given(items=st.lists(stream_items, max_size=12), data=st.data())
def test_decoder_round_trip_with_arbitrary_splits(items: list[object], data: st.DataObject) -> None:
    stream = b"".join(encode_item(item) for item in items)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert feed_in_pieces(Decoder(), stream, cuts) == items


@given(payload=st.binary(max_size=200))
def test_decoder_round_trip_byte_by_byte(payload: bytes) -> None:
    stream = b"+" + frame(escape_binary(payload)) + b"\x03"
    events = feed_bytewise(Decoder(), stream)
    assert events == [Ack(), Packet(escape_binary(payload)), Interrupt()]
    assert unescape_binary(events[1].payload) == payload


# Bytes that start something outside a packet; anything else is garbage to be skipped.
_SIGNIFICANT = set(b"$%+-\x03")
garbage = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in _SIGNIFICANT))


@given(
    chunks=st.lists(st.tuples(garbage, escaped_payloads), min_size=1, max_size=6),
    tail=garbage,
    data=st.data(),
)
def test_garbage_between_packets_is_skipped(
    chunks: list[tuple[bytes, bytes]], tail: bytes, data: st.DataObject
) -> None:
    stream = b"".join(junk + frame(payload) for junk, payload in chunks) + tail
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    assert feed_in_pieces(Decoder(), stream, cuts) == [Packet(p) for _, p in chunks]


def test_acks_and_interrupts_between_packets() -> None:
    stream = b"+$g#67-\x03+$c#63\x03"
    assert Decoder().feed(stream) == [
        Ack(),
        Packet(b"g"),
        Nak(),
        Interrupt(),
        Ack(),
        Packet(b"c"),
        Interrupt(),
    ]


def test_special_bytes_inside_a_packet_are_data() -> None:
    # '+', '-', '%' and 0x03 only mean something between packets.
    payload = b"a+b-c%d\x03e"
    assert Decoder().feed(frame(payload)) == [Packet(payload)]


def test_a_raw_dollar_restarts_the_packet() -> None:
    # A '$' never appears raw in a payload; seeing one means the previous packet was cut.
    assert Decoder().feed(b"$qSupp$g#67") == [Packet(b"g")]


def test_bad_checksum_is_reported_with_the_payload() -> None:
    decoder = Decoder()
    assert decoder.feed(b"$g#00") == [BadChecksum(b"g")]
    # The decoder carries on with the next packet.
    assert decoder.feed(b"$g#67") == [Packet(b"g")]


def test_checksum_digits_are_case_insensitive() -> None:
    assert Decoder().feed(b"$OK#9A") == [Packet(b"OK")]


@pytest.mark.parametrize("digits", [b"zz", b"9g", b" 9", b"+9", b"9$"])
def test_non_hex_checksum_digits_are_a_bad_checksum(digits: bytes) -> None:
    assert Decoder().feed(b"$x#" + digits)[:1] == [BadChecksum(b"x")]


def test_checksum_split_across_feeds() -> None:
    decoder = Decoder()
    assert decoder.feed(b"$OK#") == []
    assert decoder.feed(b"9") == []
    assert decoder.feed(b"a+") == [Packet(b"OK"), Ack()]


# --- overlong packets -----------------------------------------------------------------------


@pytest.mark.parametrize("whole", [True, False])
def test_without_checksum_verification_any_checksum_is_taken(whole: bool) -> None:
    """No-ack mode: packets are acted on whatever their checksum, so it is not checked (in
    one read, and through the incremental path); framing still is."""
    decoder = Decoder()
    decoder.verify_checksums = False
    wire = b"$g#00$m10,4#zz" + frame(b"c")
    events = decoder.feed(wire) if whole else [e for byte in wire for e in decoder.feed(bytes([byte]))]
    assert events == [Packet(b"g"), Packet(b"m10,4"), Packet(b"c")]
    assert decoder.feed(b"$x#00") == [Packet(b"x")]
    decoder.verify_checksums = True
    assert decoder.feed(b"$x#00") == [BadChecksum(b"x")]


def test_packet_of_exactly_max_size_is_accepted() -> None:
    payload = b"a" * 64
    assert Decoder(max_packet_size=64).feed(frame(payload)) == [Packet(payload)]


@pytest.mark.parametrize("bytewise", [False, True])
def test_overlong_packet_is_reported_and_decoding_continues(bytewise: bool) -> None:
    stream = frame(b"M" * 65) + b"+" + frame(b"qC")
    decoder = Decoder(max_packet_size=64)
    events = feed_bytewise(decoder, stream) if bytewise else decoder.feed(stream)
    assert events == [Overlong(65), Ack(), Packet(b"qC")]


def test_overlong_packet_in_many_chunks_reports_its_full_length() -> None:
    decoder = Decoder(max_packet_size=100)
    events = decoder.feed(b"$")
    for _ in range(50):
        events += decoder.feed(b"x" * 37)
    events += decoder.feed(b"#00$g#67")
    assert events == [Overlong(50 * 37), Packet(b"g")]


@given(
    sizes=st.lists(st.integers(0, 120), min_size=1, max_size=6),
    data=st.data(),
)
def test_overlong_and_normal_packets_mixed(sizes: list[int], data: st.DataObject) -> None:
    limit = 60
    stream = b"".join(frame(b"q" * size) for size in sizes)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    expected = [Packet(b"q" * n) if n <= limit else Overlong(n) for n in sizes]
    assert feed_in_pieces(Decoder(max_packet_size=limit), stream, cuts) == expected


# --- growth: no quadratic behaviour on big packets ---------------------------------------------
# Absolute times depend on the machine; how the time grows with the size does not. Linear code
# takes about 8 times as long for 8 times the data (a little more once the data outgrows the
# caches), quadratic code about 64 times: a bound of 24 tells them apart on any machine. Each time
# is the best of five, to shrug off a busy CPU.


def _best_time(run, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _growth(prepare, small: int) -> float:
    """How much longer the decoding `prepare(size)` returns takes for 8 times the size."""
    big_run, small_run = prepare(8 * small), prepare(small)
    big_run()  # a first run pays for warming up caches and the allocator
    return _best_time(big_run) / _best_time(small_run)


def test_big_packet_in_one_chunk_decodes_in_linear_time() -> None:
    def prepare(kib: int):
        payload = escape_binary(bytes(range(256)) * 4 * kib)  # escaped binary data
        wire = frame(payload)

        def decode() -> None:
            assert Decoder(max_packet_size=len(payload)).feed(wire) == [Packet(payload)]

        return decode

    assert _growth(prepare, 64) < 24


def test_big_packet_in_small_chunks_decodes_in_linear_time() -> None:
    # 64-byte chunks: rescanning or copying the whole buffer on every feed would be quadratic
    # (about 8 GiB of copying for 1 MiB).
    def prepare(kib: int):
        payload = b"0123456789abcdef" * 64 * kib
        wire = frame(payload)
        chunks = [wire[i : i + 64] for i in range(0, len(wire), 64)]

        def decode() -> None:
            decoder = Decoder(max_packet_size=len(payload))
            events: list[object] = []
            for chunk in chunks:
                events += decoder.feed(chunk)
            assert events == [Packet(payload)]

        return decode

    assert _growth(prepare, 128) < 24


# --- binary escaping ------------------------------------------------------------------------


def test_escape_known_bytes() -> None:
    assert escape_binary(b"#$}*") == b"}\x03}\x04}]}\x0a"
    assert escape_binary(b"plain") == b"plain"


@given(data=st.binary(max_size=500))
def test_escape_round_trip(data: bytes) -> None:
    escaped = escape_binary(data)
    assert unescape_binary(escaped) == data
    assert b"#" not in escaped and b"$" not in escaped and b"*" not in escaped
    # Every '}' in the output starts an escape of one of the four special bytes.
    i = escaped.find(b"}")
    while i >= 0:
        assert escaped[i + 1] ^ 0x20 in b"#$}*"
        i = escaped.find(b"}", i + 2)
    assert len(escaped) == len(data) + sum(data.count(bytes((c,))) for c in b"#$}*")


@given(data=st.binary(max_size=300), escape_mask=st.binary(max_size=300))
def test_unescape_any_escaped_byte(data: bytes, escape_mask: bytes) -> None:
    # The protocol lets a sender escape any byte, not only the four that must be: the bytes
    # picked by the mask are sent escaped whatever they are (']' becomes '}}').
    wire = b"".join(
        bytes((0x7D, byte ^ 0x20)) if byte in b"#$}*" or (i < len(escape_mask) and escape_mask[i] & 1)
        else bytes((byte,))
        for i, byte in enumerate(data))
    assert unescape_binary(wire) == data


def test_unescape_known_escapes() -> None:
    assert unescape_binary(b"a}}b") == b"a]b"
    assert unescape_binary(b"}\x03}\x04}]}\x0a") == b"#$}*"
    assert unescape_binary(b"x}ay") == b"xAy"


def test_unescape_real_lldb_json() -> None:
    # jThreadsInfo reply from lldb-server: '}' is sent as '}]'.
    wire = b'[{"signal":19,"tid":7121}]]'
    assert unescape_binary(wire) == b'[{"signal":19,"tid":7121}]'


def test_unescape_dangling_escape_raises() -> None:
    with pytest.raises(ValueError):
        unescape_binary(b"abc}")


# --- run-length encoding --------------------------------------------------------------------

# gdbserver 13's stop reply to lldb, as captured (lldb_vs_gdbserver.packets.txt), and the same
# reply written out by hand: rbp = 0, rsp = 0x7fffffffe720, rip = 0x7ffff7fe4b70.
GDBSERVER_RLE_REPLY = b'$T0506:0*,;07:20e7f*"7f0* ;10:704bfef7ff7f0* ;thread:p1edc.1edc;core:1;#6f'
EXPANDED_REPLY = (
    b"T0506:0000000000000000;07:20e7ffffff7f0000;10:704bfef7ff7f0000;"
    b"thread:p1edc.1edc;core:1;"
)


def test_decoder_expands_real_gdbserver_rle() -> None:
    assert Decoder(expand_rle=True).feed(GDBSERVER_RLE_REPLY) == [Packet(EXPANDED_REPLY)]
    # Without expansion the payload is delivered as sent.
    assert Decoder().feed(GDBSERVER_RLE_REPLY) == [Packet(GDBSERVER_RLE_REPLY[1:-3])]


def test_rle_encode_matches_gdbserver() -> None:
    assert frame(rle_encode(EXPANDED_REPLY)) == GDBSERVER_RLE_REPLY


@pytest.mark.parametrize(
    "plain, encoded",
    [
        (b"aaa", b"aaa"),  # too short to gain anything
        (b"aaaa", b"a* "),  # 3 repeats -> chr(3 + 29) = ' '
        (b"x" * 6, b'x*"'),  # 5 repeats -> '"'
        (b"x" * 7, b'x*"x'),  # 6 repeats would be '#': split
        (b"x" * 8, b'x*"xx'),  # 7 repeats would be '$': split
        (b"x" * 15, b"x**x"),  # 14 repeats would be '+': 13 repeats ('*'), then one 'x'
        (b"x" * 17, b"x*,x"),  # 16 repeats would be '-': 15 repeats (','), then one 'x'
        (b"x" * 98, b"x*~"),  # 97 repeats is '~', the highest allowed count
        (b"x" * 99, b"x*~x"),
    ],
)
def test_rle_encode_examples(plain: bytes, encoded: bytes) -> None:
    assert rle_encode(plain) == encoded
    assert rle_decode(encoded) == plain


no_star = st.binary(max_size=400).map(lambda b: b.replace(b"*", b""))
runs = st.lists(st.tuples(st.sampled_from(b"0f}]#$a\x00"), st.integers(1, 200)), max_size=8).map(
    lambda parts: b"".join(bytes((c,)) * n for c, n in parts)
)


@given(payload=st.one_of(no_star, runs, st.binary(max_size=400).map(escape_binary)))
def test_rle_round_trip(payload: bytes) -> None:
    encoded = rle_encode(payload)
    assert rle_decode(encoded) == payload
    assert len(encoded) <= len(payload)
    # No count character may be a frame or ack character.
    star = encoded.find(b"*")
    while star >= 0:
        assert encoded[star + 1 : star + 2] not in (b"#", b"$", b"+", b"-")
        assert 32 <= encoded[star + 1] <= 126
        star = encoded.find(b"*", star + 2)


@given(payload=st.binary(max_size=300))
def test_rle_through_the_decoder(payload: bytes) -> None:
    escaped = escape_binary(payload)
    events = Decoder(expand_rle=True).feed(frame(rle_encode(escaped)))
    assert events == [Packet(escaped)]


def test_rle_encode_refuses_a_raw_star() -> None:
    with pytest.raises(ValueError):
        rle_encode(b"a*b")


@pytest.mark.parametrize("bad", [b"*!", b"a*", b"a*\x01"])
def test_rle_decode_rejects_bad_runs(bad: bytes) -> None:
    with pytest.raises(ValueError):
        rle_decode(bad)


def test_bad_rle_in_decoder_is_a_bad_packet() -> None:
    assert Decoder(expand_rle=True).feed(frame(b"*a")) == [BadChecksum(b"*a")]


@settings(max_examples=50)
@given(data=st.binary(max_size=2000))
def test_decoder_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    for expand in (False, True):
        events = Decoder(max_packet_size=256, expand_rle=expand).feed(data)
        assert all(
            isinstance(e, (Packet, Notification, Ack, Nak, Interrupt, BadChecksum, Overlong))
            for e in events
        )


@given(st.binary(max_size=3000))
def test_checksum_is_the_byte_sum_for_any_length(payload: bytes) -> None:
    # Large payloads take a faster route than the plain sum: both must agree at every length.
    assert checksum(payload) == sum(payload) & 0xFF
