"""Agent expressions: the bytecode checker, the machine's C semantics, printf against the C
library's own, and Z packets with conditions on a live program (refused ones get an error and
change nothing; the session goes on).

Which conditions stop where, and what dprintf prints, are checked against gdb and gdbserver in
integration/test_conditions.py.
"""

from __future__ import annotations

import ctypes
import struct

import pytest
from raw_rsp import nm_address, load_base, proc_memory, start_server

from gdbstub.agent import bytecode, machine, printf
from gdbstub.agent.bytecode import BytecodeError, decode
from packets import commands as cmds
from packets import parse_command
from packets.hexcodec import MalformedCommand

N = bytecode.NAMES


def op(name: str, operand: int | None = None, size: int = 0) -> bytes:
    code = bytes([N[name]])
    return code if operand is None else code + operand.to_bytes(size, "big")


def const(value: int) -> bytes:
    return op("const64", value & (2**64 - 1), 8)


class FakeThread:
    """Registers and memory of a made-up stopped thread (the machine's Target)."""

    def __init__(self, registers=None, memory: bytes = b"", base: int = 0x1000) -> None:
        self.registers = registers or {}
        self.memory = memory
        self.base = base
        self.out: list[str] = []
        self.tsv: dict[int, int] = {}

    def register(self, number):
        return self.registers[number]

    def read(self, addr, size):
        start = addr - self.base
        return self.memory[start:start + size] if 0 <= start else b""

    def read_string(self, addr, limit):
        data = self.read(addr, limit)
        return data.split(b"\0")[0]

    def variables(self):
        return self.tsv

    def write(self, text):
        self.out.append(text)


def widths(number):
    return {0: 8, 5: 8, 17: 4, 40: 16}.get(number)


def evaluate(code: bytes, target=None) -> int:
    return machine.run(decode(code + op("end"), widths), target or FakeThread())


def signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value


@pytest.mark.parametrize("a, b, name, expected", [
    # C99 division truncates toward zero, and the remainder takes the dividend's sign.
    (-7, 2, "div_signed", -3), (7, -2, "div_signed", -3), (-7, 2, "rem_signed", -1),
    (7, -2, "rem_signed", 1), (-(2**63), -1, "div_signed", -(2**63)),
    (2**64 - 7, 2, "div_unsigned", (2**64 - 7) // 2), (-1, 1, "less_signed", 1),
    (-1, 1, "less_unsigned", 0), (-16, 2, "rsh_signed", -4), (-16, 60, "rsh_unsigned", 15),
    (1, 63, "lsh", -(2**63)), (2**63 - 1, 1, "add", -(2**63)), (3, 5, "sub", -2),
    (2**32, 2**32, "mul", 0), (6, 3, "bit_and", 2), (6, 3, "bit_or", 7), (6, 3, "bit_xor", 5),
    (5, 5, "equal", 1), (5, 6, "equal", 0),
])
def test_binary_operators_follow_c(a, b, name, expected):
    assert signed(evaluate(const(a) + const(b) + op(name))) == expected


@pytest.mark.parametrize("code, expected", [
    (const(0xFF) + op("ext", 8, 1), -1),
    (const(0x7F) + op("ext", 8, 1), 0x7F),
    (const(0x1_8000_0000) + op("ext", 32, 1), -(2**31)),
    (const(0x1_8000_0000) + op("ext", 40, 1), 0x1_8000_0000),
    (const(-1) + op("zero_ext", 16, 1), 0xFFFF),
    (const(0) + op("log_not"), 1), (const(9) + op("log_not"), 0), (const(0) + op("bit_not"), -1),
    (const(1) + const(2) + const(3) + op("rot"), 2),  # a b c -> c a b
    (const(1) + const(2) + const(3) + op("pick", 2, 1), 1),
    (const(1) + const(2) + op("swap"), 1),
    (const(4) + op("dup") + op("mul"), 16),
    (op("const8", 0xFF, 1), 0xFF),  # constants are not sign-extended
])
def test_stack_and_extension_operators(code, expected):
    assert signed(evaluate(code)) == expected


def test_registers_memory_and_jumps():
    memory = struct.pack("<bhiq", -2, -300, 70000, -5)
    thread = FakeThread({5: 12, 0: 2**64 - 1}, memory)
    assert evaluate(op("reg", 5, 2), thread) == 12
    # ref reads zero-extend; gdb adds ext for signed types.
    assert evaluate(const(0x1000) + op("ref8"), thread) == 0xFE
    assert signed(evaluate(const(0x1001) + op("ref16") + op("ext", 16, 1), thread)) == -300
    assert evaluate(const(0x1003) + op("ref32"), thread) == 70000
    assert signed(evaluate(const(0x1007) + op("ref64"), thread)) == -5
    # if (rdi == 12) 100 else 200: if_goto and goto jump to absolute byte offsets.
    code = (op("reg", 5, 2) + op("const8", 12, 1) + op("equal") + op("if_goto", 14, 2)
            + op("const8", 200, 1) + op("goto", 16, 2) + op("const8", 100, 1))
    assert evaluate(code, thread) == 100
    thread.registers[5] = 13
    assert evaluate(code, thread) == 200


@pytest.mark.parametrize("code, message", [
    (const(1) + const(0) + op("div_signed"), "division by zero"),
    (const(0x9000) + op("ref32"), "cannot read"),
    (op("pop"), "underflow"),
    (op("const8", 1, 1) * 101, "overflow"),
])
def test_what_cannot_be_evaluated_is_an_evaluation_error(code, message):
    with pytest.raises(machine.EvaluationError, match=message):
        evaluate(code, FakeThread(memory=bytes(16)))


def test_an_endless_loop_is_cut_short():
    with pytest.raises(machine.EvaluationError, match="more than"):
        machine.run(decode(op("goto", 0, 2), widths), FakeThread())


@pytest.mark.parametrize("code, message", [
    (b"", "empty"),
    (b"\x01" + op("end"), "float"),
    (b"\x1c" + op("end"), "ref_double"),
    (b"\x00" + op("end"), "unknown opcode 0x00"),
    (b"\x99" + op("end"), "unknown opcode 0x99"),
    (bytes([N["const32"], 1, 2]), "cut short"),
    (op("goto", 1, 2) + op("end"), "starts no instruction"),
    (op("goto", 200, 2) + op("end"), "starts no instruction"),
    (op("reg", 40, 2) + op("end"), "128 bits"),
    (op("reg", 999, 2) + op("end"), "no register 999"),
    (const(1), "does not end"),
    (bytes([N["printf"], 1, 0, 4]) + b"%d\n\0" + op("end"), None),  # fine: 1 arg, 1 directive
    (bytes([N["printf"], 2, 0, 4]) + b"%d\n\0" + op("end"), "2 arguments for 1"),
    (bytes([N["printf"], 1, 0, 4]) + b"%f\n\0" + op("end"), "not supported"),
    (bytes([N["printf"], 1, 0, 4]) + b"%p\n\0" + op("end"), "not supported"),
    (bytes([N["printf"], 0, 0, 3]) + b"ab!" + op("end"), "unterminated"),
    (bytes([N["printf"], 0, 0, 4]) + b"\\q\n\0" + op("end"), "escape"),
    (bytes([N["printf"], 0, 0, 9]), "cut short"),
])
def test_what_cannot_run_is_refused_when_set(code, message):
    if message is None:
        decode(code, widths)
        return
    with pytest.raises(BytecodeError, match=message):
        decode(code, widths)


_LIBC = ctypes.CDLL(None)


def c_snprintf(fmt: bytes, *args) -> str:
    buf = ctypes.create_string_buffer(4096)
    _LIBC.snprintf(buf, len(buf), fmt, *args)
    return buf.value.decode("latin-1")


@pytest.mark.parametrize("fmt, value, c_value", [
    (b"%d", 2**32 + 5, ctypes.c_int(5)),
    (b"%d", 2**64 - 3, ctypes.c_int(-3)),
    (b"%ld", 2**64 - 3, ctypes.c_long(-3)),
    (b"%lld", 2**63, ctypes.c_longlong(-(2**63))),
    (b"%u", 2**64 - 1, ctypes.c_uint(2**32 - 1)),
    (b"%lu", 2**64 - 1, ctypes.c_ulong(2**64 - 1)),
    (b"%hd", 0x18000, ctypes.c_int(0x18000)),
    (b"%hhu", 0x1FF, ctypes.c_int(0x1FF)),
    (b"%x", 0xDEADBEEF12, ctypes.c_uint(0xADBEEF12)),
    (b"%#x", 255, ctypes.c_uint(255)),
    (b"%#o", 8, ctypes.c_uint(8)),
    (b"%#o", 0, ctypes.c_uint(0)),
    (b"%08lX", 0xBEEF, ctypes.c_ulong(0xBEEF)),
    (b"%-6d|", 42, ctypes.c_int(42)),
    (b"%+5i", 7, ctypes.c_int(7)),
    (b"% d", 7, ctypes.c_int(7)),
    (b"%.3d", 7, ctypes.c_int(7)),
    (b"%c", 0x141, ctypes.c_int(0x141)),
    (b"%zu", 123, ctypes.c_size_t(123)),
    (b"100%% %d", 1, ctypes.c_int(1)),
])
def test_printf_prints_what_c_prints(fmt, value, c_value):
    pieces = printf.parse_format(fmt)
    assert printf.render(pieces, [value], lambda addr, limit: b"") == c_snprintf(fmt, c_value)


def test_printf_strings_and_escapes():
    pieces = printf.parse_format(rb"[%s] [%5.2s] [%s]\t\"q\"\n")
    memory = {0x10: b"hello", 0x20: b"world"}
    text = printf.render(pieces, [0x10, 0x20, 0], lambda addr, limit: memory[addr])
    assert text == c_snprintf(b"[%s] [%5.2s] [%s]\t\"q\"\n", b"hello", b"world", b"(null)")


def test_printf_opcode_pops_its_arguments_in_order():
    thread = FakeThread(memory=b"name\0", base=0x1000)
    fmt = b"%d %s %ld\\n\0"
    # gdb pushes the last argument first, then the channel and the function.
    code = (const(-9) + const(0x1000) + const(42) + const(0) + const(0)
            + bytes([N["printf"], 3]) + len(fmt).to_bytes(2, "big") + fmt + op("end"))
    assert machine.run(decode(code, widths), thread, want_result=False) is None
    assert thread.out == ["42 name -9\n"]


def test_trace_state_variables():
    thread = FakeThread()
    assert evaluate(const(5) + op("setv", 3, 2) + op("pop") + op("getv", 3, 2) + op("getv", 4, 2) + op("add"),
                    thread) == 5
    assert thread.tsv == {3: 5}


@pytest.mark.parametrize("packet, conditions, commands, persist", [
    (b"Z0,401000,1", (), (), False),
    (b"Z0,401000,1;X3,220527", (b"\x22\x05\x27",), (), False),
    (b"Z0,401000,1;X2,2227X1,27", (b"\x22\x27", b"\x27"), (), False),
    (b"Z0,401000,1;X1,27;cmds:1,X1,27X1,27", (b"\x27",), (b"\x27", b"\x27"), True),
    (b"Z1,401000,1;cmds:0,X1,27", (), (b"\x27",), False),
    (b"Z0,401000,1;X1,27;later-extension", (b"\x27",), (), False),
])
def test_z_packets_carry_conditions_and_commands(packet, conditions, commands, persist):
    cmd = parse_command(packet)
    assert isinstance(cmd, cmds.InsertBreakpoint)
    assert (cmd.conditions, cmd.commands, cmd.persist) == (conditions, commands, persist)


@pytest.mark.parametrize("packet", [
    b"Z0,401000,1;X3,2205", b"Z0,401000,1;X2,zz27", b"Z0,401000,1;X,27", b"Z0,401000,1;X0,",
    b"Z0,401000,1;X1,27Y", b"Z0,401000,1;cmds:2,X1,27", b"Z0,401000,1;cmds:1X1,27",
])
def test_malformed_conditions_are_malformed_packets(packet):
    with pytest.raises(MalformedCommand):
        parse_command(packet)


def test_refused_conditions_get_an_error_and_change_nothing(programs, tmp_path):
    """On a live program: a bytecode that cannot run is refused with a reason; the program's
    text keeps its bytes; a good condition is then accepted and removed by z0."""
    program = programs.simple
    server = start_server(program, [], tmp_path / "server.log")
    try:
        client = server.connect()
        client.handshake()
        addr = load_base(server.pid, program) + nm_address(program, "main")
        before = proc_memory(server.pid, addr, 1)
        client.request_ok(b"QEnableErrorStrings")
        reply = client.request(b"Z0,%x,1;X2,0127" % addr)  # the float prefix
        assert reply.startswith(b"E01;") and b"float" in bytes.fromhex(reply[4:].decode())
        assert proc_memory(server.pid, addr, 1) == before
        assert client.request(b"Z0,%x,1;X2,zz27" % addr).startswith(b"E")
        assert proc_memory(server.pid, addr, 1) == before
        client.request_ok(b"Z0,%x,1;X3,220127" % addr)
        assert proc_memory(server.pid, addr, 1) == b"\xcc"
        client.request_ok(b"z0,%x,1" % addr)
        assert proc_memory(server.pid, addr, 1) == before
    finally:
        server.stop()
