"""The x86-64 register table against things it did not compute: gdbserver's own description,
gdb's and lldb's reading of ours, the kernel's headers, the CPU's own x87 tag word and
binutils' DWARF register names."""

from __future__ import annotations

import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gdbstub.arch import Register, RegisterTable, cpu_has_avx, x86_64_table

GDB = shutil.which("gdb")
GDBSERVER = shutil.which("gdbserver")
LLDB = shutil.which("lldb")
GCC = shutil.which("gcc")
OBJDUMP = shutil.which("objdump")

needs_gdb = pytest.mark.skipif(not GDB, reason="gdb not installed")
needs_gcc = pytest.mark.skipif(not GCC, reason="gcc not installed")

# What the kernel and the SDM say, written down here independently of the code under test.
USER_REGS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
    "fs_base gs_base ds es fs gs"
).split()
XSTATE_BV_OFFSET = 512
FCTRL_INIT, MXCSR_INIT = 0x037F, 0x1F80

TABLES = [pytest.param(True, id="avx"), pytest.param(False, id="sse")]


# ---------------------------------------------------------------------------------------------
# helpers


class BufferRegs:
    """Register sets held in byte buffers: the RegisterSets a stopped thread would provide."""

    def __init__(self, gpr: bytes, fp: bytes) -> None:
        self.sets = {"gpr": bytearray(gpr), "fp": bytearray(fp)}
        self.writes: list[str] = []

    def read(self, regset: str) -> bytes:
        return bytes(self.sets[regset])

    def write(self, regset: str, data: bytes) -> None:
        assert len(data) == len(self.sets[regset]), "a register set keeps its size"
        self.writes.append(regset)
        self.sets[regset][:] = data


def random_regs(seed: int, xsave: bool, xstate_bv: int = 0b111) -> BufferRegs:
    rnd = random.Random(seed)
    gpr = rnd.randbytes(216)
    fp = bytearray(rnd.randbytes(1024 if xsave else 512))
    if xsave:
        fp[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8] = xstate_bv.to_bytes(8, "little")
    return BufferRegs(gpr, fp)


def expected_value(name: str, gpr: bytes, fp: bytes) -> bytes:
    """A register's value computed straight from the raw sets, from the layouts alone."""
    u16 = lambda off: fp[off : off + 2] + b"\0\0"  # noqa: E731 - 16-bit field, 32-bit register
    if name in ("eflags", "cs", "ss", "ds", "es", "fs", "gs"):
        off = 8 * USER_REGS.index(name)
        return gpr[off : off + 4]
    if name in USER_REGS:
        off = 8 * USER_REGS.index(name)
        return gpr[off : off + 8]
    if m := re.fullmatch(r"st(\d)", name):
        off = 32 + 16 * int(m[1])
        return fp[off : off + 10]
    if m := re.fullmatch(r"xmm(\d+)", name):
        off = 160 + 16 * int(m[1])
        return fp[off : off + 16]
    if m := re.fullmatch(r"ymm(\d+)h", name):
        off = 576 + 16 * int(m[1])
        return fp[off : off + 16]
    fields = {"fctrl": u16(0), "fstat": u16(2), "fiseg": u16(12), "foseg": u16(20),
              "fioff": fp[8:12], "fooff": fp[16:20], "mxcsr": fp[24:28]}  # fmt: skip
    if name in fields:
        return fields[name]
    if name == "fop":
        return (int.from_bytes(fp[6:8], "little") & 0x7FF).to_bytes(4, "little")
    raise KeyError(name)


def parse_remote_registers(text: str) -> dict[str, tuple[int, int, str, int]]:
    """`maint print remote-registers` rows: name -> (remote number, size, type, g offset)."""
    rows = {}
    for line in text.splitlines():
        cols = line.split()
        if len(cols) == 8 and cols[1].isdigit() and cols[0] != "''":
            name, _nr, _rel, _off, size, type_, rmt, goff = cols
            rows[name] = (int(rmt), int(size), type_, int(goff))
    return rows


def shape(el: ET.Element) -> tuple:
    """An element's tag, attributes and children, without the whitespace between them."""
    return (el.tag, el.attrib, [shape(child) for child in el])


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# ground truth fixtures


@pytest.fixture(scope="module")
def gdbserver_view() -> tuple[dict[str, tuple[int, int, str, int]], ET.Element]:
    """gdbserver's amd64-linux description, as gdb received it: remote registers and XML."""
    if not (GDB and GDBSERVER):
        pytest.skip("gdb and gdbserver are needed")
    out = run([GDB, "-nx", "-batch", "-ex", "set sysroot /",
               "-ex", f"target remote | {GDBSERVER} - /bin/true",
               "-ex", "maint print remote-registers", "-ex", "maint print xml-tdesc", "-ex", "kill"])  # fmt: skip
    rows = parse_remote_registers(out.stdout)
    xml = out.stdout[out.stdout.index("<?xml") : out.stdout.index("</target>") + len("</target>")]
    assert "rip" in rows, out.stdout + out.stderr
    return rows, ET.fromstring(xml)


def gdb_reading(xml_text: str, tmp_path: Path) -> tuple[dict[str, tuple[int, int, str, int]], str]:
    """How gdb numbers and lays out the registers of a description file (no target needed)."""
    path = tmp_path / "target.xml"
    path.write_text(xml_text)
    out = run([GDB, "-nx", "-batch", "-ex", f"set tdesc filename {path}", "-ex", "maint print remote-registers"])
    return parse_remote_registers(out.stdout), out.stderr


PROBE_C = r"""
#include <stdio.h>
#include <stddef.h>
#include <sys/user.h>
#include <cpuid.h>

unsigned char area[512] __attribute__((aligned(16)));
unsigned char env[28];
/* 80-bit values: 8 bytes of significand, then sign and exponent. */
unsigned char denormal[10] = {1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00};
unsigned char infinity[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x7f};
unsigned char unnormal[10] = {0, 0, 0, 0, 0, 0, 0, 0x40, 0xff, 0x3f};
unsigned char negzero[10]  = {0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x80};

static void dump(const char *name)
{
    printf("x87 %s ", name);
    for (int i = 0; i < 512; i++) printf("%02x", area[i]);
    printf(" ");
    for (int i = 0; i < 28; i++) printf("%02x", env[i]);
    printf("\n");
}

/* FXSAVE64 is the image the kernel hands out for a 64-bit task; FNSTENV stores the
   full tag word as the CPU itself computes it. */
#define SCENARIO(name, code) \
    asm volatile("fninit\n" code "\nfxsave64 area(%%rip)\nfnstenv env(%%rip)\nfninit" ::: "memory"); \
    dump(name)
#define OFF(s, f) printf("off %s %s %zu\n", #s, #f, offsetof(struct s, f))

int main(void)
{
    SCENARIO("empty", "");
    SCENARIO("one", "fld1");
    SCENARIO("three", "fld1\nfldz\nfldpi");
    SCENARIO("specials", "fldt denormal(%%rip)\nfldt infinity(%%rip)\nfldt unnormal(%%rip)\n"
                         "fldt negzero(%%rip)\nfldl2e");
    SCENARIO("hole", "fld1\nfldz\nfld1\nffree %%st(1)");
    SCENARIO("rotated", "fld1\nfldz\nfincstp\nfincstp\nfincstp\nfldpi");
    SCENARIO("full", "fld1\nfldz\nfldpi\nfldl2t\nfldl2e\nfldlg2\nfldln2\nfld1");
    SCENARIO("nan", "fldz\nfldz\nfdivrp");

    OFF(user_regs_struct, r15); OFF(user_regs_struct, r14); OFF(user_regs_struct, r13);
    OFF(user_regs_struct, r12); OFF(user_regs_struct, rbp); OFF(user_regs_struct, rbx);
    OFF(user_regs_struct, r11); OFF(user_regs_struct, r10); OFF(user_regs_struct, r9);
    OFF(user_regs_struct, r8); OFF(user_regs_struct, rax); OFF(user_regs_struct, rcx);
    OFF(user_regs_struct, rdx); OFF(user_regs_struct, rsi); OFF(user_regs_struct, rdi);
    OFF(user_regs_struct, orig_rax); OFF(user_regs_struct, rip); OFF(user_regs_struct, cs);
    OFF(user_regs_struct, eflags); OFF(user_regs_struct, rsp); OFF(user_regs_struct, ss);
    OFF(user_regs_struct, fs_base); OFF(user_regs_struct, gs_base); OFF(user_regs_struct, ds);
    OFF(user_regs_struct, es); OFF(user_regs_struct, fs); OFF(user_regs_struct, gs);
    OFF(user_fpregs_struct, cwd); OFF(user_fpregs_struct, swd); OFF(user_fpregs_struct, ftw);
    OFF(user_fpregs_struct, fop); OFF(user_fpregs_struct, rip); OFF(user_fpregs_struct, rdp);
    OFF(user_fpregs_struct, mxcsr); OFF(user_fpregs_struct, st_space);
    OFF(user_fpregs_struct, xmm_space);
    printf("size user_regs_struct %zu\n", sizeof(struct user_regs_struct));
    printf("size user_fpregs_struct %zu\n", sizeof(struct user_fpregs_struct));

    unsigned a, b, c, d;
    if (__get_cpuid_max(0, 0) >= 0xd) {
        __cpuid_count(0xd, 2, a, b, c, d);   /* XSAVE component 2 (AVX): EAX size, EBX offset */
        printf("xsave_avx %u %u\n", b, a);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Kernel header offsets, real FXSAVE images with the CPU's own tag words, XSAVE layout."""
    if not GCC:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    subprocess.run([GCC, "-O0", "-o", str(d / "probe"), str(d / "probe.c")], check=True, timeout=60)
    out = run([str(d / "probe")]).stdout
    result: dict = {"x87": {}, "off": {}, "size": {}}
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "x87":
            result["x87"][rest[0]] = (bytes.fromhex(rest[1]), bytes.fromhex(rest[2]))
        elif kind == "off":
            result["off"][(rest[0], rest[1])] = int(rest[2])
        elif kind == "size":
            result["size"][rest[0]] = int(rest[1])
        elif kind == "xsave_avx":
            result["xsave_avx"] = (int(rest[0]), int(rest[1]))
    return result


# ---------------------------------------------------------------------------------------------
# the document


BUILTIN_TYPES = {"int8", "int16", "int32", "int64", "int128", "uint8", "uint16", "uint32", "uint64",
                 "uint128", "int", "code_ptr", "data_ptr", "i387_ext", "ieee_half", "ieee_single",
                 "ieee_double", "bfloat16", "bool"}  # fmt: skip


@pytest.mark.parametrize("has_avx", TABLES)
def test_target_xml_is_one_well_formed_document(has_avx: bool) -> None:
    root = ET.fromstring(x86_64_table(has_avx).target_xml())
    assert root.tag == "target"
    assert root.findtext("architecture") == "i386:x86-64"
    assert root.findtext("osabi") == "GNU/Linux"
    assert not any("include" in el.tag for el in root.iter()), "no xi:include"
    features = [f.get("name") for f in root.findall("feature")]
    expected = ["org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.linux",
                "org.gnu.gdb.i386.segments"] + (["org.gnu.gdb.i386.avx"] if has_avx else [])  # fmt: skip
    assert features == expected
    for feature in root.findall("feature"):
        defined = {el.get("id") for el in feature if el.tag in ("vector", "union", "flags", "struct")}
        for el in feature.iter():
            if el.tag in ("reg", "field", "vector"):
                assert el.get("type") in defined | BUILTIN_TYPES, (feature.get("name"), el.attrib)
    numbers = [int(r.get("regnum")) for r in root.iter("reg")]
    assert numbers == list(range(76 if has_avx else 60))


def test_registers_match_gdbserver_description(gdbserver_view) -> None:
    _, theirs = gdbserver_view
    their_regs = {r.get("name"): (f.get("name"), r.attrib) for f in theirs.findall("feature") for r in f.iter("reg")}
    their_types = {t.get("id"): shape(t) for f in theirs.findall("feature") for t in f if t.tag != "reg"}
    has_avx = "ymm0h" in their_regs
    ours = ET.fromstring(x86_64_table(has_avx).target_xml())
    for feature in ours.findall("feature"):
        for el in feature:
            if el.tag == "reg":
                their_feature, attrs = their_regs[el.get("name")]
                assert their_feature == feature.get("name")
                assert el.attrib == attrs
            else:  # a type definition: the same as the one gdb's own feature file carries
                assert shape(el) == their_types[el.get("id")]


@needs_gdb
@pytest.mark.parametrize("lldb_attributes", [False, True])
@pytest.mark.parametrize("has_avx", TABLES)
def test_gdb_numbers_our_description_as_gdbserver_s(gdbserver_view, tmp_path, has_avx, lldb_attributes) -> None:
    theirs, _ = gdbserver_view
    if has_avx and "ymm0h" not in theirs:
        pytest.skip("this CPU has no AVX, so gdbserver describes none")
    table = x86_64_table(has_avx)
    rows, stderr = gdb_reading(table.target_xml(lldb_attributes=lldb_attributes), tmp_path)
    assert stderr == "", "gdb complained about the description"
    assert set(rows) == {r.name for r in table.registers}
    for reg in table.registers:
        # remote number, size, gdb's type and offset in the g packet, all as with gdbserver
        assert rows[reg.name] == theirs[reg.name], reg.name
        assert rows[reg.name][0] == reg.regnum
        assert rows[reg.name][1] == reg.size
    assert table.g_size == max(off + size for _, size, _, off in rows.values())


def test_cpu_has_avx_agrees_with_gdbserver(gdbserver_view) -> None:
    theirs, _ = gdbserver_view
    assert cpu_has_avx() == ("ymm0h" in theirs)


# ---------------------------------------------------------------------------------------------
# layout


def test_offsets_match_kernel_headers(probe) -> None:
    table = x86_64_table(True)
    assert probe["size"]["user_regs_struct"] == 216
    assert probe["size"]["user_fpregs_struct"] == 512
    for reg in table.registers:
        if reg.regset == "gpr":
            assert reg.offset == probe["off"][("user_regs_struct", reg.name)], reg.name
    fp = {name: probe["off"][("user_fpregs_struct", field)]
          for name, field in [("fctrl", "cwd"), ("fstat", "swd"), ("ftag", "ftw"), ("fop", "fop"),
                              ("fioff", "rip"), ("fooff", "rdp"), ("mxcsr", "mxcsr")]}  # fmt: skip
    for name, offset in fp.items():
        assert table.by_name(name).offset == offset, name
    assert table.by_name("st0").offset == probe["off"][("user_fpregs_struct", "st_space")]
    assert table.by_name("xmm0").offset == probe["off"][("user_fpregs_struct", "xmm_space")]
    # fiseg and foseg are read where gdb reads them: just past the 32-bit offsets.
    assert table.by_name("fiseg").offset == fp["fioff"] + 4
    assert table.by_name("foseg").offset == fp["fooff"] + 4


def test_ymm_upper_halves_where_the_cpu_puts_them(probe) -> None:
    if "xsave_avx" not in probe or not cpu_has_avx():
        pytest.skip("no AVX")
    offset, size = probe["xsave_avx"]
    table = x86_64_table(True)
    for i in range(16):
        assert table.by_name(f"ymm{i}h").offset == offset + 16 * i
    assert size == 16 * 16


@pytest.mark.parametrize("has_avx", TABLES)
def test_read_all_is_every_register_in_number_order(has_avx: bool) -> None:
    table = x86_64_table(has_avx)
    regs = random_regs(1, xsave=has_avx)
    gpr, fp = regs.sets["gpr"], regs.sets["fp"]
    image = table.read_all(regs)
    pos = 0
    for reg in table.registers:
        if reg.name == "ftag":
            value = image[pos : pos + reg.size]
        else:
            value = expected_value(reg.name, gpr, fp)
            assert image[pos : pos + reg.size] == value, reg.name
        assert table.read_register(regs, reg.regnum) == value, reg.name
        pos += reg.size
    assert pos == len(image) == table.g_size


@pytest.mark.parametrize("has_avx", TABLES)
def test_write_all_of_read_all_changes_nothing(has_avx: bool) -> None:
    table = x86_64_table(has_avx)
    regs = random_regs(2, xsave=has_avx)
    before = {k: bytes(v) for k, v in regs.sets.items()}
    image = table.read_all(regs)
    table.write_all(regs, image)
    assert regs.writes == []
    assert {k: bytes(v) for k, v in regs.sets.items()} == before


@pytest.mark.parametrize("has_avx", TABLES)
def test_write_all_then_read_all_round_trips(has_avx: bool) -> None:
    table = x86_64_table(has_avx)
    regs = random_regs(3, xsave=has_avx)
    source = random_regs(4, xsave=has_avx)
    image = bytearray(table.read_all(source))
    # Registers whose stored form has spare bits: give them values that survive a round trip.
    pos = {r.name: sum(x.size for x in table.registers[: r.regnum]) for r in table.registers}
    image[pos["fop"] : pos["fop"] + 4] = (0x5A5).to_bytes(4, "little")
    for name in ("fctrl", "fstat", "fiseg", "foseg"):
        image[pos[name] : pos[name] + 4] = (0x1234).to_bytes(4, "little")
    table.write_all(regs, bytes(image))
    after = table.read_all(regs)
    ftag = pos["ftag"]
    assert after[:ftag] + after[ftag + 4 :] == image[:ftag] + image[ftag + 4 :]
    assert sorted(regs.writes) == ["fp", "gpr"]


def test_write_register_touches_only_its_bytes() -> None:
    table = x86_64_table(True)
    for reg in table.registers:
        regs = random_regs(5, xsave=True)
        before = {k: bytes(v) for k, v in regs.sets.items()}
        value = bytes(range(0xA0, 0xA0 + reg.size))
        table.write_register(regs, reg.regnum, value)
        changed = [i for i, (a, b) in enumerate(zip(before[reg.regset], regs.sets[reg.regset])) if a != b]
        slot = range(reg.offset, reg.offset + max(reg.slot, 1))
        assert all(i in slot for i in changed), (reg.name, changed)
        if reg.name not in ("ftag", "fop", "fctrl", "fstat", "fiseg", "foseg"):
            assert table.read_register(regs, reg.regnum) == value, reg.name


def test_32_bit_registers_in_64_bit_slots_write_their_own_bytes() -> None:
    table = x86_64_table(False)
    regs = BufferRegs(bytes(216), bytes(512))  # the kernel keeps the upper halves zero
    table.write_register(regs, table.by_name("eflags").regnum, (0x246).to_bytes(4, "little"))
    table.write_register(regs, table.by_name("cs").regnum, (0x33).to_bytes(4, "little"))
    gpr = regs.sets["gpr"]
    assert gpr[8 * USER_REGS.index("eflags") :][:8] == (0x246).to_bytes(8, "little")
    assert gpr[8 * USER_REGS.index("cs") :][:8] == (0x33).to_bytes(8, "little")
    regs.sets["gpr"][8 * USER_REGS.index("ss") + 4] = 0xEE  # a stray upper byte is left alone
    table.write_register(regs, table.by_name("ss").regnum, (0x2B).to_bytes(4, "little"))
    assert gpr[8 * USER_REGS.index("ss") :][:8] == bytes.fromhex("2b000000ee000000")


def test_bad_arguments_are_refused() -> None:
    table = x86_64_table(True)
    regs = random_regs(7, xsave=True)
    with pytest.raises(KeyError):
        table.read_register(regs, 76)
    with pytest.raises(KeyError):
        table.write_register(regs, -1, b"\0" * 8)
    with pytest.raises(ValueError):
        table.write_register(regs, 0, b"\0" * 4)
    with pytest.raises(ValueError):
        table.write_all(regs, b"\0" * (table.g_size - 1))
    assert table.by_number(76) is None and table.by_name("zmm0h") is None
    # An AVX table needs the XSAVE area, not the bare FXSAVE image.
    with pytest.raises(ValueError):
        table.read_all(random_regs(8, xsave=False))


# ---------------------------------------------------------------------------------------------
# x87 conversions, against the CPU


def test_ftag_and_control_words_agree_with_fnstenv(probe) -> None:
    table = x86_64_table(False)
    num = lambda name: table.by_name(name).regnum  # noqa: E731
    u32 = lambda b: int.from_bytes(b, "little")  # noqa: E731
    assert len(probe["x87"]) == 8
    for scenario, (image, env) in probe["x87"].items():
        regs = BufferRegs(bytes(216), image)
        fcw, fsw, ftw, fip, fop_cs, fdp = struct.unpack_from("<HxxHxxHxxIII", env)
        assert u32(table.read_register(regs, num("ftag"))) == ftw, scenario
        assert u32(table.read_register(regs, num("fstat"))) == fsw, scenario
        assert u32(table.read_register(regs, num("fctrl"))) == fcw, scenario
        assert u32(table.read_register(regs, num("fop"))) == fop_cs >> 16 & 0x7FF, scenario
        assert u32(table.read_register(regs, num("fioff"))) == fip, scenario
        assert u32(table.read_register(regs, num("fooff"))) == fdp, scenario
        # Writing the full tag back gives the CPU's own abridged byte.
        regs.sets["fp"][4] ^= 0xFF
        table.write_register(regs, num("ftag"), ftw.to_bytes(4, "little"))
        assert regs.sets["fp"][4] == image[4], scenario


@pytest.mark.parametrize(
    ("word", "abridged"),
    [(0xFFFF, 0x00), (0x0000, 0xFF), (0x3FFF, 0x80), (0xFFF0, 0x03), (0xAAAA, 0xFF), (0x7FFD, 0x81), (0x5FFD, 0xC1)],
)
def test_ftag_write_keeps_only_empty_or_not(word: int, abridged: int) -> None:
    table = x86_64_table(False)
    regs = random_regs(9, xsave=False)
    table.write_register(regs, table.by_name("ftag").regnum, word.to_bytes(4, "little"))
    assert regs.sets["fp"][4] == abridged


def test_fop_has_eleven_bits() -> None:
    table = x86_64_table(False)
    regs = random_regs(10, xsave=False)
    regs.sets["fp"][6:8] = (0xFFFF).to_bytes(2, "little")
    fop = table.by_name("fop").regnum
    assert table.read_register(regs, fop) == (0x7FF).to_bytes(4, "little")
    table.write_register(regs, fop, (0xFFFF0123).to_bytes(4, "little"))
    # The five bits above the opcode stay as they were.
    assert regs.sets["fp"][6:8] == (0xF923).to_bytes(2, "little")


# ---------------------------------------------------------------------------------------------
# XSAVE init state


def test_components_in_init_state_read_as_their_init_values(probe) -> None:
    table = x86_64_table(True)
    regs = random_regs(11, xsave=True, xstate_bv=0)
    value = {r.name: table.read_register(regs, r.regnum) for r in table.registers}
    for i in range(8):
        assert value[f"st{i}"] == bytes(10)
    for i in range(16):
        assert value[f"xmm{i}"] == bytes(16)
        assert value[f"ymm{i}h"] == bytes(16)
    # The x87 control registers read as after FNINIT, as the CPU shows them.
    empty_image, _ = probe["x87"]["empty"]
    after_fninit = {r.name: table.read_register(BufferRegs(bytes(216), empty_image + bytes(512)), r.regnum)
                    for r in table.registers if r.name in ("fctrl", "fstat", "ftag", "mxcsr")}  # fmt: skip
    for name in ("fctrl", "fstat", "ftag"):
        assert value[name] == after_fninit[name], name
    assert value["fctrl"] == FCTRL_INIT.to_bytes(4, "little")
    assert value["ftag"] == (0xFFFF).to_bytes(4, "little")
    assert value["mxcsr"] == MXCSR_INIT.to_bytes(4, "little")


def test_mxcsr_is_live_while_either_sse_or_avx_is() -> None:
    table = x86_64_table(True)
    for bv in (0b010, 0b100, 0b110):
        regs = random_regs(12, xsave=True, xstate_bv=bv)
        assert table.read_register(regs, table.by_name("mxcsr").regnum) == bytes(regs.sets["fp"][24:28])
    regs = random_regs(12, xsave=True, xstate_bv=0b100)  # AVX live, SSE in init state
    assert table.read_register(regs, table.by_name("xmm3").regnum) == bytes(16)
    assert table.read_register(regs, table.by_name("ymm3h").regnum) == bytes(regs.sets["fp"][624:640])


def xstate_bv(regs: BufferRegs) -> int:
    return int.from_bytes(regs.sets["fp"][XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8], "little")


def test_writing_a_ymm_half_in_init_state_makes_avx_live() -> None:
    table = x86_64_table(True)
    regs = random_regs(13, xsave=True, xstate_bv=0b011)
    table.write_register(regs, table.by_name("ymm3h").regnum, bytes(range(16)))
    assert xstate_bv(regs) == 0b111
    fp = regs.sets["fp"]
    for i in range(16):
        # The others held stale bytes; now that the component is live they must be its zeros.
        assert fp[576 + 16 * i : 592 + 16 * i] == (bytes(range(16)) if i == 3 else bytes(16)), i
    assert table.read_register(regs, table.by_name("ymm3h").regnum) == bytes(range(16))


def test_writing_the_init_value_needs_no_write() -> None:
    table = x86_64_table(True)
    regs = random_regs(14, xsave=True, xstate_bv=0b011)
    table.write_register(regs, table.by_name("ymm9h").regnum, bytes(16))
    assert regs.writes == []


def test_writing_x87_in_init_state_starts_from_fninit_values() -> None:
    table = x86_64_table(True)
    regs = random_regs(15, xsave=True, xstate_bv=0b110)
    one = bytes(7) + b"\x80\xff\x3f"  # 1.0 as an 80-bit value
    table.write_register(regs, table.by_name("st0").regnum, one)
    assert xstate_bv(regs) == 0b111
    fp = regs.sets["fp"]
    assert fp[0:2] == FCTRL_INIT.to_bytes(2, "little") and fp[2:4] == bytes(2) and fp[4] == 0
    assert fp[32:42] == one and fp[48:160] == bytes(112)


def test_writing_sse_in_init_state() -> None:
    table = x86_64_table(True)
    regs = random_regs(16, xsave=True, xstate_bv=0b101)
    table.write_register(regs, table.by_name("xmm15").regnum, b"\x11" * 16)
    assert xstate_bv(regs) == 0b111
    fp = regs.sets["fp"]
    assert fp[160:400] == bytes(240) and fp[400:416] == b"\x11" * 16


# ---------------------------------------------------------------------------------------------
# numbers for lldb and unwinders


def test_dwarf_numbers_are_binutils_names(tmp_path) -> None:
    if not (GCC and OBJDUMP):
        pytest.skip("gcc and objdump are needed")
    # Ask binutils which register each DWARF number names: a CFI note for every number.
    src = [".text", ".globl f", "f:", ".cfi_startproc"]
    src += [f".cfi_offset {n}, -8" for n in range(67)] + ["ret", ".cfi_endproc"]
    (tmp_path / "cfi.s").write_text("\n".join(src) + "\n")
    subprocess.run([GCC, "-c", str(tmp_path / "cfi.s"), "-o", str(tmp_path / "cfi.o")], check=True, timeout=60)
    frames = run([OBJDUMP, "--dwarf=frames", str(tmp_path / "cfi.o")]).stdout
    binutils = {int(n): name for n, name in re.findall(r"DW_CFA_offset(?:_extended)?: r(\d+) \(([\w.]+)\)", frames)}
    assert len(binutils) > 60
    alias = {"rflags": "eflags", "fs.base": "fs_base", "gs.base": "gs_base", "fcw": "fctrl", "fsw": "fstat"}
    table = x86_64_table(True)
    by_name = {r.name: r for r in table.registers}
    for number, name in binutils.items():
        reg = by_name.get(alias.get(name, name))
        if reg is not None:
            assert reg.dwarf == number and reg.ehframe == number, reg.name
    for reg in table.registers:
        if reg.dwarf is not None:
            assert alias.get(binutils[reg.dwarf], binutils[reg.dwarf]) == reg.name


def test_psabi_anchor_numbers() -> None:
    table = x86_64_table(True)
    dwarf = {r.name: r.dwarf for r in table.registers}
    expected = {"rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7, "rip": 16}
    expected |= {f"r{i}": i for i in range(8, 16)}
    expected |= {f"xmm{i}": 17 + i for i in range(16)} | {f"st{i}": 33 + i for i in range(8)}
    assert {k: dwarf[k] for k in expected} == expected
    assert all(dwarf[f"ymm{i}h"] is None for i in range(16))


def test_generic_roles_follow_the_calling_convention() -> None:
    table = x86_64_table(False)
    roles = {r.generic: r.name for r in table.registers if r.generic}
    assert roles == {"pc": "rip", "sp": "rsp", "fp": "rbp", "flags": "eflags", "arg1": "rdi",
                     "arg2": "rsi", "arg3": "rdx", "arg4": "rcx", "arg5": "r8", "arg6": "r9"}  # fmt: skip


def test_expedited_registers_are_frame_stack_and_pc() -> None:
    table = x86_64_table(True)
    assert [table.by_number(n).name for n in table.expedite] == ["rbp", "rsp", "rip"]


def test_register_is_a_frozen_record() -> None:
    reg = x86_64_table(True).by_name("rip")
    assert isinstance(reg, Register)
    with pytest.raises(AttributeError):
        reg.offset = 0  # type: ignore[misc]
    assert isinstance(x86_64_table(True), RegisterTable)


# ---------------------------------------------------------------------------------------------
# real clients reading registers through a minimal remote stub


class RegisterStub(threading.Thread):
    """Just enough of the remote protocol for a client to attach and use g/G/p/P; every
    register access goes through the table under test onto BufferRegs."""

    def __init__(self, table: RegisterTable, regs: BufferRegs, lldb_attributes: bool = False) -> None:
        super().__init__(daemon=True)
        self.table, self.regs = table, regs
        self.xml = table.target_xml(lldb_attributes=lldb_attributes).encode()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.packets: list[bytes] = []

    def run(self) -> None:
        self.listener.settimeout(60)
        conn, _ = self.listener.accept()
        with conn:
            buf, ack = b"", True
            while data := conn.recv(65536):
                buf += data
                while m := re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", buf):
                    packet, buf = m[1], buf[m.end() :]
                    self.packets.append(packet)
                    reply = self.answer(packet)
                    if ack:
                        conn.sendall(b"+")
                    conn.sendall(b"$%s#%02x" % (reply, sum(reply) & 0xFF))
                    if packet == b"QStartNoAckMode":
                        ack = False
                    if packet == b"k":
                        return

    def answer(self, p: bytes) -> bytes:
        t, regs = self.table, self.regs
        if p.startswith(b"qSupported"):
            return b"PacketSize=4000;qXfer:features:read+;QStartNoAckMode+"
        if p.startswith(b"qXfer:features:read:target.xml:"):
            off, length = (int(x, 16) for x in p.rsplit(b":", 1)[1].split(b","))
            return (b"m" if off + length < len(self.xml) else b"l") + self.xml[off : off + length]
        if p == b"g":
            return t.read_all(regs).hex().encode()
        if p[:1] == b"G":
            t.write_all(regs, bytes.fromhex(p[1:].decode()))
            return b"OK"
        if p[:1] == b"p":
            n = int(p[1:].split(b";")[0], 16)
            return t.read_register(regs, n).hex().encode() if t.by_number(n) else b"E01"
        if p[:1] == b"P":
            n, v = p[1:].split(b";")[0].split(b"=")
            t.write_register(regs, int(n, 16), bytes.fromhex(v.decode()))
            return b"OK"
        fixed = {b"QStartNoAckMode": b"OK", b"?": b"S05", b"qfThreadInfo": b"m1", b"qsThreadInfo": b"l",
                 b"qC": b"QC1", b"k": b"X09", b"D": b"OK"}  # fmt: skip
        if p in fixed:
            return fixed[p]
        if p[:1] == b"H" or p.startswith(b"qAttached"):
            return b"OK" if p[:1] == b"H" else b"1"
        return b"E01" if p[:1] == b"m" else b""


def hex64(b: bytes) -> str:
    return hex(int.from_bytes(b, "little"))


@needs_gdb
def test_gdb_reads_and_writes_registers_through_the_table() -> None:
    has_avx = True
    table = x86_64_table(has_avx)
    regs = random_regs(20, xsave=True)
    gpr, fp = bytes(regs.sets["gpr"]), bytes(regs.sets["fp"])
    stub = RegisterStub(table, regs)
    stub.start()
    scalars = ["rax", "rbx", "rsp", "r13", "rip", "eflags", "cs", "gs", "fs_base", "orig_rax", "fctrl",
               "fioff", "mxcsr"]  # fmt: skip
    cmds = [f"target remote 127.0.0.1:{stub.port}"]
    cmds += [f"p/x ${name}" for name in scalars] + ["p/x $ymm5.v4_int64"]
    cmds += ["set $rax = 0x1122334455667788", "set $ymm2.v8_int32[5] = 0x01020304",
             "set $eflags = 0x246", "set $xmm7.v4_int32[0] = 0x55667788", "detach"]  # fmt: skip
    args = [GDB, "-nx", "-batch"]
    for c in cmds:
        args += ["-ex", c]
    out = run(args)
    stub.join(10)
    printed = re.findall(r"^\$\d+ = (.*)$", out.stdout, re.M)
    assert len(printed) == len(scalars) + 1, out.stdout + out.stderr
    for name, text in zip(scalars, printed):
        # gdb prints signed types as two's complement in /x, so compare as unsigned
        expect = int.from_bytes(expected_value(name, gpr, fp), "little")
        assert int(text, 16) == expect, name
    lanes = [int(x, 16) for x in re.findall(r"0x[0-9a-f]+", printed[len(scalars)])]
    ymm5 = fp[160 + 16 * 5 : 176 + 16 * 5] + fp[576 + 16 * 5 : 592 + 16 * 5]
    assert lanes == [int.from_bytes(ymm5[i : i + 8], "little") for i in range(0, 32, 8)]
    # the writes landed where the kernel would read them
    g, f = regs.sets["gpr"], regs.sets["fp"]
    assert g[80:88] == (0x1122334455667788).to_bytes(8, "little")
    assert g[144:148] == (0x246).to_bytes(4, "little")
    assert f[576 + 32 + 4 : 576 + 32 + 8] == (0x01020304).to_bytes(4, "little")
    assert f[160 + 16 * 7 : 160 + 16 * 7 + 4] == (0x55667788).to_bytes(4, "little")
    assert any(p.startswith(b"P") for p in stub.packets)


@pytest.mark.skipif(not LLDB, reason="lldb not installed")
@pytest.mark.parametrize("lldb_attributes", [False, True])
def test_lldb_reads_and_writes_registers_through_the_table(lldb_attributes: bool) -> None:
    table = x86_64_table(True)
    regs = random_regs(21, xsave=True)
    gpr, fp = bytes(regs.sets["gpr"]), bytes(regs.sets["fp"])
    stub = RegisterStub(table, regs, lldb_attributes=lldb_attributes)
    stub.start()
    out = run([LLDB, "--no-lldbinit", "-b", "-o", f"gdb-remote 127.0.0.1:{stub.port}",
               "-o", "register read --all", "-o", "register write rcx 0x0badc0ffee",
               "-o", 'register write ymm1h "{' + " ".join(f"0x{i:02x}" for i in range(16)) + '}"',
               "-o", "register read pc sp fp flags arg1"])  # fmt: skip
    stub.join(10)
    values = dict(re.findall(r"^\s*(\w+) = (0x[0-9a-f]+|\{[^}]*\})", out.stdout, re.M))
    assert "rip" in values, out.stdout + out.stderr
    for reg in table.registers:
        if reg.regset == "gpr":
            expect = int.from_bytes(expected_value(reg.name, gpr, fp), "little")
            assert int(values[reg.name], 16) == expect, reg.name
    for i in range(16):
        # lldb joins xmm and the upper half into ymm, shown byte by byte
        shown = bytes(int(x, 16) for x in values[f"ymm{i}"].strip("{}").split())
        assert shown == fp[160 + 16 * i : 176 + 16 * i] + fp[576 + 16 * i : 592 + 16 * i], i
    assert int(values["mxcsr"], 16) == int.from_bytes(fp[24:28], "little")
    assert regs.sets["gpr"][88:96] == (0x0BADC0FFEE).to_bytes(8, "little")
    assert regs.sets["fp"][576 + 16 : 592 + 16] == bytes(range(16))
    roles = re.findall(r"^\s*(\w+) = 0x", out.stdout.split("register read pc")[-1], re.M)
    assert roles == ["rip", "rsp", "rbp", "eflags", "rdi"]


def test_read_registers_reads_each_set_once() -> None:
    table = x86_64_table(True)

    class CountingRegs(BufferRegs):
        def __init__(self, gpr: bytes, fp: bytes) -> None:
            super().__init__(gpr, fp)
            self.reads: list[str] = []

        def read(self, regset: str) -> bytes:
            self.reads.append(regset)
            return super().read(regset)

    source = random_regs(30, xsave=True)
    regs = CountingRegs(source.sets["gpr"], source.sets["fp"])
    numbers = list(table.expedite) + [table.by_name("xmm1").regnum]
    values = table.read_registers(regs, numbers)
    assert sorted(regs.reads) == ["fp", "gpr"]
    assert values == [table.read_register(source, n) for n in numbers]
