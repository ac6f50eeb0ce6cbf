"""The unrecovered panic or fatal error a stopped Go process is dying of, as Go prints it.

The server stops a Go program at the entry of the runtime functions it dies through (goview.py:
runtime.fatalpanic, runtime.throw, runtime.fatal, runtime.fatalsignal) and records a FatalHit
there: the function, the thread, the g its TLS slot held and the first argument registers. From
those and the program's memory this module rebuilds the first lines of Go's crash report:

    panic: goevents: boom                       fatal error: concurrent map writes
    [signal SIGSEGV: ... pc=0x...]  (if any)
                                                goroutine 7 [running]:
    goroutine 6 [running]:

What it relies on:
  * runtime.throw(s string) / runtime.fatal(s string): at the function's entry, under Go's
    register ABI (ABIInternal, Go >= 1.17 on amd64), s's pointer is in RAX and its length in
    RBX. Only the registers recorded at the entry are used: once the function runs they are
    reused. Go prints "fatal error: " + s (each newline followed by a tab where the runtime
    has printindented, Go >= 1.23).
  * runtime.fatalsignal(sig uint32, ...): sig in EAX at the entry; Go prints
    sigtable[sig].name ("SIGSEGV: segmentation violation"), or "Signal N".
  * runtime.fatalpanic(msgs *_panic): the chain is g._panic of the goroutine that panicked
    (RAX, msgs, at the entry when g._panic is 0), newest first through _panic.link, printed
    oldest first as runtime.printpanics does: "panic: V", "[recovered]", "\\t" between
    entries, runtime.Goexit entries skipped, repeats marked "repanicked" skipped (Go >= 1.25).
    gopanic has already run preprintpanics, which replaced error and Stringer values by the
    strings their methods return; other values are printed as runtime.printpanicval does
    (nil, bool, integers, floats, complex numbers, strings; named basic types as T(value);
    anything else as (T) 0xADDR). Floats as runtime.printfloat (+1.500000e+000) where the
    program has that function, else (Go >= 1.26) in strconv's shortest 'g' form (1.5).
  * runtime.fatal with a panic in flight (g._panic set), where the runtime has
    printPreFatalDeferPanic (Go >= 1.26): the panics first, values as they are (no Error()),
    then "\\tfatal error: ...".
  * no fatal hit, but a stopped goroutine with a panic still running deferred calls (a
    breakpoint in a deferred function): `in_flight` shows its chain, marked as not fatal
    yet. preprintpanics has not run: an error prints its message when it is a
    *errors.errorString, *fmt.wrapError or *fmt.wrapErrors (the field found by name in the
    type's own descriptor), else as (T) 0xADDR: the server runs no code of the program, so
    it cannot call Error() or String().
  * the goroutine line is the first goroutine header runtime.dopanic_m prints: the g that
    called the function when it is a goroutine (goid != 0); on the system stack (g0, as in
    the deadlock check) its M's current goroutine, else the first goroutine of allgs that
    Go's traceback of all goroutines shows (not dead, not a runtime goroutine).
  * struct offsets (g._panic, g.sig*, _panic.*, the type descriptor fields, moduledata.types,
    sigTabT) are the runtime's `offsets` (the generated table's row, else the binary's
    DWARF); type names are read from the type descriptors themselves through
    moduledata.types, so stripped binaries work; sigtable is the `runtime.sigtable` symbol,
    else found among the data operands of runtime.fatalsignal / runtime.signame.

API:
    FatalHit(function, tid, g, rax, rbx)
    PanicReader(runtime).report(hits, goroutines) -> str      (PanicError when unreadable)
    PanicReader(runtime).in_flight(goroutines) -> str         ("" when none is panicking)
    PanicReader(runtime).panics(g) -> list[PanicEntry]       .value_text(type, data) -> str
        .float_text(value, bits) -> str     .complex_text(re, im, bits) -> str
    format_float(value) -> str, format_float_shortest(value, bits) -> str
                                  (the runtime's print of a float: Go <= 1.25, Go >= 1.26)
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import Sequence

from gdbstub.symbols.goruntime import GoRuntime
from gdbstub.symbols.goruntime_types import GoRuntimeError, Goroutine
from gdbstub.symbols.gotraceback import goroutine_header, is_system_goroutine

FATALPANIC = "runtime.fatalpanic"
THROW_FUNCTIONS = frozenset({"runtime.throw", "runtime.fatal"})
FATALSIGNAL = "runtime.fatalsignal"

# internal/abi Kind values (unchanged since Go 1.0) and the mask of the kind bits (the upper
# bits of the byte held flags, KindDirectIface and KindGCProg, in older releases);
# TFlagExtraStar (1 << 1, since 1.8): the name has a leading "*" that is not part of the
# type's string.
KIND_MASK = 0x1F
KIND_POINTER, KIND_STRING = 22, 24
TFLAG_EXTRA_STAR = 0x2
_BASIC = {1: "bool", 2: "int", 3: "int8", 4: "int16", 5: "int32", 6: "int64", 7: "uint",
          8: "uint8", 9: "uint16", 10: "uint32", 11: "uint64", 12: "uintptr", 13: "float32",
          14: "float64", 15: "complex64", 16: "complex128", KIND_STRING: "string"}
_INT_FORMATS = {2: "<q", 3: "<b", 4: "<h", 5: "<i", 6: "<q", 7: "<Q", 8: "<B", 9: "<H",
                10: "<I", 11: "<Q", 12: "<Q"}
# Error types whose Error() returns one of their string fields, by field name.
_ERROR_MESSAGE_FIELDS = {"*errors.errorString": "s", "*fmt.wrapError": "msg",
                         "*fmt.wrapErrors": "msg"}
_MAX_CHAIN = 1000
_MAX_STRING = 1 << 20


class PanicError(GoRuntimeError):
    """The panic or fatal error cannot be read."""


@dataclass(frozen=True)
class FatalHit:
    """A thread at the entry of one of the functions a Go program dies through."""
    function: str      # "runtime.fatalpanic", "runtime.throw", "runtime.fatal", ...
    tid: int
    g: int | None      # the g in the thread's TLS slot at the entry (None: unreadable)
    rax: int           # the first two integer argument registers at the entry
    rbx: int


@dataclass
class PanicEntry:
    """One _panic of a goroutine's chain."""
    addr: int
    arg_type: int
    arg_data: int
    link: int
    recovered: bool
    goexit: bool
    repanicked: bool | None   # None: the release has no such flag


def format_float(v: float) -> str:
    """runtime.printfloat up to Go 1.25: +d.dddddde+ddd (7 digits), NaN, +Inf, -Inf."""
    if v != v:
        return "NaN"
    if v + v == v and v > 0:
        return "+Inf"
    if v + v == v and v < 0:
        return "-Inf"
    n = 7
    sign = "+"
    e = 0
    if v == 0:
        if math.copysign(1.0, v) < 0:
            sign = "-"
    else:
        if v < 0:
            v = -v
            sign = "-"
        while v >= 10:
            e += 1
            v /= 10
        while v < 1:
            e -= 1
            v *= 10
        h = 5.0
        for _ in range(n):
            h /= 10
        v += h
        if v >= 10:
            e += 1
            v /= 10
    digits = []
    for _ in range(n):
        s = int(v)
        digits.append(chr(s + ord("0")))
        v -= s
        v *= 10
    esign = "+"
    if e < 0:
        e, esign = -e, "-"
    return f"{sign}{digits[0]}.{''.join(digits[1:])}e{esign}{e // 100}{e // 10 % 10}{e % 10}"


def _f32(v: float) -> float:
    """v rounded to a float32 (to +-Inf past its range, as a conversion in Go)."""
    try:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def format_float_shortest(v: float, bits: int = 64) -> str:
    """strconv.FormatFloat(v, 'g', -1, bits), the runtime's print of a float from Go 1.26 on:
    the shortest digits that read back as the same float32/float64, in %e form when the
    exponent is < -4 or >= 6 (two exponent digits at least), else in %f form."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = math.copysign(1.0, v) < 0
    a = abs(v)
    if a == 0:
        digits, dp = "", 0
    else:
        for n in range(1, 18):
            text = f"{a:.{n - 1}e}"
            back = float(text)
            if (back if bits == 64 else _f32(back)) == a:
                break
        mantissa, exp = text.split("e")
        digits = mantissa.replace(".", "").rstrip("0") or "0"
        dp = int(exp) + 1
    nd = len(digits)
    sign = "-" if neg else ""
    exp = dp - 1
    if nd and (exp < -4 or exp >= 6):
        body = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    prec = max(nd - dp, 0)
    whole = digits[:dp] + "0" * (dp - nd) if dp > 0 else "0"
    frac = "".join(digits[i] if 0 <= i < nd else "0" for i in range(dp, dp + prec))
    return sign + whole + ("." + frac if prec else "")


def _hex(value: int) -> str:
    return f"{value:#x}"


class PanicReader:
    def __init__(self, runtime: GoRuntime) -> None:
        self.rt = runtime
        self.o = runtime.offsets
        self.read = runtime.read_memory
        self.bias = runtime.bias

    # --- memory -------------------------------------------------------------------------

    def _field(self, key: str) -> int:
        off = self.o.get(key, -1)
        if off < 0:
            raise PanicError(f"this Go release's runtime has no {key.replace('_', '.', 1)} "
                             "(or its offset is unknown)")
        return off

    def _u64(self, addr: int) -> int:
        data = self.read(addr, 8)
        if len(data) != 8:
            raise PanicError(f"cannot read memory at {addr:#x}")
        return struct.unpack("<Q", data)[0]

    def _u8(self, addr: int) -> int:
        return self.read(addr, 1)[0]

    def _bytes(self, ptr: int, length: int) -> bytes:
        if length == 0:
            return b""
        if not 0 < length <= _MAX_STRING or not ptr:
            raise PanicError(f"implausible string ({ptr:#x}, {length})")
        data = self.read(ptr, length)
        if len(data) != length:
            raise PanicError(f"cannot read the string at {ptr:#x}")
        return data

    def _text(self, ptr: int, length: int) -> str:
        return self._bytes(ptr, length).decode("utf-8", errors="replace")

    def _go_string(self, addr: int) -> str:
        ptr, length = struct.unpack("<QQ", self.read(addr, 16))
        return self._text(ptr, length)

    # --- printing rules of this release ---------------------------------------------------

    @functools.cached_property
    def _indents(self) -> bool:
        """runtime.printindented (Go >= 1.23): a newline in a panic value or a fatal error
        message is followed by a tab."""
        return self.rt.pclntab.func_by_name("runtime.printindented") is not None

    @functools.cached_property
    def _fixed_floats(self) -> bool:
        """runtime.printfloat (Go <= 1.25) prints +d.dddddde+ddd; its successors
        printfloat64/printfloat32 (1.26+) the shortest strconv 'g' form."""
        return self.rt.pclntab.func_by_name("runtime.printfloat") is not None

    def _indented(self, text: str) -> str:
        return text.replace("\n", "\n\t") if self._indents else text

    # --- type descriptors -----------------------------------------------------------------

    @functools.cached_property
    def _types_base(self) -> int:
        md = self.rt.binary.moduledata
        if md is None:
            raise PanicError("cannot find the runtime's module data (type names)")
        return self._u64(md + self.bias + self._field("moduledata_types"))

    @functools.cached_property
    def _old_names(self) -> bool:
        minor = self.rt.binary.minor
        return minor is not None and minor < (1, 17)   # 2-byte big-endian lengths before

    def _name(self, addr: int) -> str:
        """A runtime name (abi.Name): a flags byte, the length, the bytes."""
        head = self.read(addr, 11)
        if self._old_names:
            length, pos = struct.unpack_from(">H", head, 1)[0], 3
        else:
            length, shift, pos = 0, 0, 1
            while True:
                b = head[pos]
                pos += 1
                length |= (b & 0x7F) << shift
                if not b & 0x80:
                    break
                shift += 7
                if pos >= len(head):
                    raise PanicError(f"bad name at {addr:#x}")
        return self._text(addr + pos, length)

    def _type_header(self, typ: int) -> tuple[int, int, int]:
        """(kind, tflag, str nameOff) of a type descriptor."""
        size = self._field("type_size")
        raw = self.read(typ, size)
        if len(raw) != size:
            raise PanicError(f"cannot read the type at {typ:#x}")
        return (raw[self._field("type_kind")] & KIND_MASK, raw[self._field("type_tflag")],
                struct.unpack_from("<i", raw, self._field("type_str"))[0])

    def type_string(self, typ: int) -> str:
        """runtime rtype.string(): the type as Go prints it ("*errors.errorString")."""
        _kind, tflag, str_off = self._type_header(typ)
        name = self._name(self._types_base + str_off)
        return name[1:] if tflag & TFLAG_EXTRA_STAR and name.startswith("*") else name

    def _struct_field(self, struct_type: int, name: str) -> int | None:
        """Offset of a named field of a struct type, from its descriptor."""
        fields = struct_type + self._field("structtype_fields")
        ptr, length = struct.unpack("<QQ", self.read(fields, 16))
        size = self._field("structfield_size")
        if not 0 < length <= 4096:
            return None
        raw = self.read(ptr, size * length)
        for i in range(length):
            name_ptr = struct.unpack_from("<Q", raw, i * size + self._field("structfield_name"))[0]
            if name_ptr and self._name(name_ptr) == name:
                offset = i * size + self._field("structfield_offset")
                return struct.unpack_from("<Q", raw, offset)[0]
        return None

    # --- values ---------------------------------------------------------------------------

    def value_text(self, typ: int, data: int, error_messages: bool = True) -> str:
        """runtime.printpanicval of the interface value (typ, data); with `error_messages`,
        an error whose message is a field of it prints that message (what its Error()
        returns, which preprintpanics would print), not `(T) 0xADDR`."""
        if typ == 0:
            return "nil"
        kind = self._type_header(typ)[0]
        type_string = self.type_string(typ)
        basic = _BASIC.get(kind)
        if basic is not None:
            value = self._basic(kind, data)
            if type_string == basic:      # the predeclared type itself
                return value
            if kind == KIND_STRING:
                return f'{type_string}("{value}")'
            if kind in (15, 16):
                return f"{type_string}{value}"
            return f"{type_string}({value})"
        field = _ERROR_MESSAGE_FIELDS.get(type_string) if error_messages else None
        if field is not None and kind == KIND_POINTER and data:
            elem = self._u64(typ + self._field("ptrtype_elem"))
            offset = self._struct_field(elem, field)
            if offset is not None:
                return self._go_string(data + offset)
        return f"({type_string}) {_hex(data)}"

    def _basic(self, kind: int, data: int) -> str:
        if kind == KIND_STRING:
            return self._indented(self._go_string(data))
        if kind == 1:
            return "true" if self._u8(data) else "false"
        if kind in _INT_FORMATS:
            fmt = _INT_FORMATS[kind]
            size = struct.calcsize(fmt)
            return str(struct.unpack(fmt, self.read(data, size))[0])
        bits = 32 if kind in (13, 15) else 64
        if kind in (13, 14):
            return self.float_text(struct.unpack("<f" if bits == 32 else "<d",
                                                 self.read(data, bits // 8))[0], bits)
        re, im = struct.unpack("<ff" if bits == 32 else "<dd", self.read(data, bits // 4))
        return self.complex_text(re, im, bits)

    def float_text(self, value: float, bits: int = 64) -> str:
        """The runtime's print of a float32 (bits 32) or float64 of this program."""
        return format_float(value) if self._fixed_floats else format_float_shortest(value, bits)

    def complex_text(self, re: float, im: float, bits: int = 64) -> str:
        """The runtime's print of a complex64 (parts of 32 bits) or complex128: the two
        floats between parentheses. strconv's form (Go >= 1.26) always signs the imaginary
        part, NaN included: "(1+NaNi)"; printfloat signs all but NaN: "(+1.000000e+000NaNi)"."""
        im_text = self.float_text(im, bits)
        if not self._fixed_floats and im_text[0] not in "+-":
            im_text = "+" + im_text
        return f"({self.float_text(re, bits)}{im_text}i)"

    # --- the _panic chain -----------------------------------------------------------------

    def panic_head(self, g: int) -> int:
        return self._u64(g + self._field("g_panic"))

    def panics(self, head: int) -> list[PanicEntry]:
        """The chain from a *_panic, newest first."""
        arg, link = self._field("panic_arg"), self._field("panic_link")
        recovered, goexit = self._field("panic_recovered"), self._field("panic_goexit")
        repanicked = self.o.get("panic_repanicked", -1)
        out: list[PanicEntry] = []
        seen: set[int] = set()
        p = head
        while p and p not in seen and len(out) < _MAX_CHAIN:
            seen.add(p)
            typ, data = struct.unpack("<QQ", self.read(p + arg, 16))
            out.append(PanicEntry(p, typ, data, self._u64(p + link), bool(self._u8(p + recovered)),
                                  bool(self._u8(p + goexit)),
                                  bool(self._u8(p + repanicked)) if repanicked >= 0 else None))
            p = out[-1].link
        return out

    def format_panics(self, chain: Sequence[PanicEntry], error_messages: bool = True) -> str:
        """runtime.printpanics of a chain (newest first): one line per shown panic."""
        if any(p.repanicked is not None for p in chain):
            # What preprintpanics / printPreFatalDeferPanic mark before printing (Go >= 1.25).
            for p, older in zip(chain, chain[1:]):
                if (older.arg_type, older.arg_data) == (p.arg_type, p.arg_data):
                    older.repanicked = True
        out: list[str] = []

        def emit(i: int) -> None:
            p = chain[i]
            if i + 1 < len(chain):
                emit(i + 1)
                older = chain[i + 1]
                if older.repanicked:
                    return
                if not older.goexit:
                    out.append("\t")
            if p.goexit:
                return
            out.append("panic: " + self.value_text(p.arg_type, p.arg_data, error_messages))
            if p.recovered and p.repanicked:
                out.append(" [recovered, repanicked]")
            elif p.recovered:
                out.append(" [recovered]")
            out.append("\n")

        if chain:
            emit(0)
        return "".join(out)

    def signal_line(self, g: int) -> str:
        """The `[signal SIG...: ... code=0x1 addr=0x0 pc=0x...]` line Go prints for a panic a
        signal caused (g.sig != 0), else ""."""
        sig = struct.unpack("<I", self.read(g + self._field("g_sig"), 4))[0]
        if not sig:
            return ""
        name = self.signal_name(sig)
        head = f"[signal {name}" if name else f"[signal {_hex(sig)}"
        return (f"{head} code={_hex(self._u64(g + self._field('g_sigcode0')))} "
                f"addr={_hex(self._u64(g + self._field('g_sigcode1')))} "
                f"pc={_hex(self._u64(g + self._field('g_sigpc')))}]\n")

    # --- signals --------------------------------------------------------------------------

    @functools.cached_property
    def _sigtable(self) -> int | None:
        sym = self.rt.binary.elf.symbol("runtime.sigtable")
        if sym is not None:
            return sym.value + self.bias
        size, name = self._field("sigtab_size"), self._field("sigtab_name")
        for cand in self.rt._operand_candidates("runtime.fatalsignal", "runtime.signame",
                                                "runtime.sighandler"):
            addr = cand + self.bias
            try:
                # sigtable[0] is {0, "SIGNONE: no trap"}, [1] SIGHUP.
                if self._go_string(addr + name).startswith("SIGNONE") and \
                        self._go_string(addr + size + name).startswith("SIGHUP"):
                    return addr
            except (OSError, PanicError, UnicodeDecodeError, struct.error):
                continue
        return None

    def signal_name(self, sig: int) -> str:
        """runtime.signame: sigtable[sig].name, "" when out of the table or unknown."""
        count = self.o.get("sigtable_count", -1)
        table = self._sigtable
        if table is None or (count >= 0 and sig >= count):
            return ""
        entry = table + sig * self._field("sigtab_size")
        return self._go_string(entry + self._field("sigtab_name"))

    # --- the report -----------------------------------------------------------------------

    def message(self, hit: FatalHit) -> str:
        """What Go prints first for one hit (one or more lines, each ending in a newline)."""
        if hit.function == FATALPANIC:
            head = self.panic_head(hit.g) if hit.g else 0
            chain = self.panics(head or hit.rax)
            if not chain:
                raise PanicError("the panicking goroutine has no panic record")
            text = self.format_panics(chain)
            return text + (self.signal_line(hit.g) if hit.g else "")
        if hit.function in THROW_FUNCTIONS:
            text = "fatal error: " + self._indented(self._text(hit.rax, hit.rbx)) + "\n"
            if hit.function == "runtime.fatal" and hit.g and \
                    self.rt.pclntab.func_by_name("runtime.printPreFatalDeferPanic") is not None:
                chain = self.panics(self.panic_head(hit.g))
                if chain:
                    # printPreFatalDeferPanic prints the values as they are (no Error()).
                    text = self.format_panics(chain, error_messages=False) + "\t" + text
            return text
        if hit.function == FATALSIGNAL:
            sig = hit.rax & 0xFFFFFFFF
            name = self.signal_name(sig)
            return f"{name}\n" if name else f"Signal {sig}\n"
        raise PanicError(f"{hit.function} is not where a Go program dies")

    def goroutine_for(self, hit: FatalHit, goroutines: Sequence[Goroutine]) -> Goroutine | None:
        """The goroutine whose header Go prints first after the message (see the module doc)."""
        by_addr = {g.addr: g for g in goroutines}
        if hit.g:
            own = by_addr.get(hit.g)
            if own is not None:
                return own
            m = self._u64(hit.g + self.o["g_m"])
            curg = self._u64(m + self.o["m_curg"]) if m else 0
            if curg in by_addr:
                return by_addr[curg]
        return next((g for g in goroutines if g.addr != hit.g and not is_system_goroutine(g)),
                    None)

    def report(self, hits: Sequence[FatalHit], goroutines: Sequence[Goroutine]) -> str:
        """Go's first lines for the hits (in the order the threads got there): every message
        (each thread that reached a fatal function prints its own), then the goroutine
        header of the first."""
        if not hits:
            raise PanicError("no panic or fatal error in progress")
        text = "".join(self.message(hit) for hit in hits)
        g = self.goroutine_for(hits[0], goroutines)
        if g is not None:
            text += "\n" + goroutine_header(g) + "\n"
        return text

    def in_flight(self, goroutines: Sequence[Goroutine]) -> str:
        """Panics still running deferred calls (a recover() may yet stop them) on the given
        goroutines: for each, its panics as Go would print them, its header and a note; ""
        when none has a panic. Error values print their message where it is a field of
        theirs (*errors.errorString, *fmt.wrapError): preprintpanics has not run yet."""
        blocks = []
        for g in goroutines:
            chain = self.panics(self.panic_head(g.addr))
            if not any(not p.goexit for p in chain):
                continue
            blocks.append(self.format_panics(chain) + "\n" + goroutine_header(g) + "\n"
                          + "(not fatal yet: deferred calls are running and may recover it)\n")
        return "\n".join(blocks)
