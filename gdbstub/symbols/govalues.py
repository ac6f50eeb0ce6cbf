"""Values of a stopped Go program read from its memory and printed as Go's runtime prints
them (runtime.printpanicval, printfloat): type names from the type descriptors themselves
(through moduledata.types, so stripped binaries work), basic values, floats in the form of
the program's release, and the message of the common error types.

A base of gopanic.PanicReader; struct offsets are the runtime's `offsets`.

API:
    GoValueReader(runtime).value_text(type, data) -> str   .type_string(type) -> str
        .float_text(value, bits) -> str     .complex_text(re, im, bits) -> str
    format_float(value) -> str, format_float_shortest(value, bits) -> str
                                  (the runtime's print of a float: Go <= 1.25, Go >= 1.26)
    GoValueError: what cannot be read
"""

from __future__ import annotations

import functools
import math
import struct

from gdbstub.symbols.goruntime import GoRuntime
from gdbstub.symbols.goruntime_types import GoRuntimeError

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
_MAX_STRING = 1 << 20


class GoValueError(GoRuntimeError):
    """A value, a type or a string of the program cannot be read."""


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


def hex_address(value: int) -> str:
    return f"{value:#x}"


class GoValueReader:
    def __init__(self, runtime: GoRuntime) -> None:
        self.rt = runtime
        self.o = runtime.offsets
        self.read = runtime.read_memory
        self.bias = runtime.bias

    # --- memory -------------------------------------------------------------------------

    def _field(self, key: str) -> int:
        off = self.o.get(key, -1)
        if off < 0:
            raise GoValueError(f"this Go release's runtime has no {key.replace('_', '.', 1)} "
                             "(or its offset is unknown)")
        return off

    def _u64(self, addr: int) -> int:
        data = self.read(addr, 8)
        if len(data) != 8:
            raise GoValueError(f"cannot read memory at {addr:#x}")
        return struct.unpack("<Q", data)[0]

    def _u8(self, addr: int) -> int:
        return self.read(addr, 1)[0]

    def _bytes(self, ptr: int, length: int) -> bytes:
        if length == 0:
            return b""
        if not 0 < length <= _MAX_STRING or not ptr:
            raise GoValueError(f"implausible string ({ptr:#x}, {length})")
        data = self.read(ptr, length)
        if len(data) != length:
            raise GoValueError(f"cannot read the string at {ptr:#x}")
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
            raise GoValueError("cannot find the runtime's module data (type names)")
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
                    raise GoValueError(f"bad name at {addr:#x}")
        return self._text(addr + pos, length)

    def _type_header(self, typ: int) -> tuple[int, int, int]:
        """(kind, tflag, str nameOff) of a type descriptor."""
        size = self._field("type_size")
        raw = self.read(typ, size)
        if len(raw) != size:
            raise GoValueError(f"cannot read the type at {typ:#x}")
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
        return f"({type_string}) {hex_address(data)}"

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
