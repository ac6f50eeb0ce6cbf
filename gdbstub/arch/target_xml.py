"""Render a register table as gdb's target description XML (qXfer:features:read:target.xml).

One self-contained document, no xi:include, laid out the way gdbserver serves amd64 GNU/Linux:
the same features, the same register names, numbers, sizes and types, and the same type
definitions gdb's own feature files carry (i386_eflags, i386_mxcsr, vec128 and its vectors,
v2ui128).
gdb accepts it for `<architecture>i386:x86-64</architecture>`; lldb 14 reads the same document
and, when asked, the lldb-only attributes (dwarf_regnum, ehframe_regnum, generic, and encoding
and format for wide registers whose gdb type lldb cannot map) that gdb ignores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from gdbstub.xml_text import quoteattr

if TYPE_CHECKING:
    from gdbstub.arch.registers import RegisterTable

# Bit fields of the flag registers, as gdb's 64bit-core.xml and 64bit-sse.xml define them.
# Bit 1 of EFLAGS is reserved (always 1); gdb lists it with an empty name.
EFLAGS_FIELDS = [
    ("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9),
    ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19),
    ("VIP", 20), ("ID", 21),
]  # fmt: skip
MXCSR_FIELDS = [
    ("IE", 0), ("DE", 1), ("ZE", 2), ("OE", 3), ("UE", 4), ("PE", 5), ("DAZ", 6), ("IM", 7),
    ("DM", 8), ("ZM", 9), ("OM", 10), ("UM", 11), ("PM", 12), ("FZ", 15),
]  # fmt: skip

# The lanes of a 128-bit vector register: (vector type id, element type, count, union field).
VEC128_LANES = [
    ("v8bf16", "bfloat16", 8, "v8_bfloat16"),
    ("v8h", "ieee_half", 8, "v8_half"),
    ("v4f", "ieee_single", 4, "v4_float"),
    ("v2d", "ieee_double", 2, "v2_double"),
    ("v16i8", "int8", 16, "v16_int8"),
    ("v8i16", "int16", 8, "v8_int16"),
    ("v4i32", "int32", 4, "v4_int32"),
    ("v2i64", "int64", 2, "v2_int64"),
]


def _flags(type_id: str, size: int, fields: list[tuple[str, int]]) -> list[str]:
    lines = [f'<flags id="{type_id}" size="{size}">']
    lines += [f'  <field name="{n}" start="{b}" end="{b}" type="bool"/>' for n, b in fields]
    return lines + ["</flags>"]


def _vec128() -> list[str]:
    lines = [f'<vector id="{v}" type="{elem}" count="{n}"/>' for v, elem, n, _ in VEC128_LANES]
    lines.append('<union id="vec128">')
    lines += [f'  <field name="{field}" type="{vid}"/>' for vid, _, _, field in VEC128_LANES]
    lines.append('  <field name="uint128" type="uint128"/>')
    return lines + ["</union>"]


# Types each feature defines before its registers (a type is visible only inside its feature).
FEATURE_TYPES = {
    "org.gnu.gdb.i386.core": lambda: _flags("i386_eflags", 4, EFLAGS_FIELDS),
    "org.gnu.gdb.i386.sse": lambda: _vec128() + _flags("i386_mxcsr", 4, MXCSR_FIELDS),
    # xmm16-31 are vec128 again; the 256-bit zmm upper halves are two 128-bit lanes.
    "org.gnu.gdb.i386.avx512": lambda: _vec128() + ['<vector id="v2ui128" type="uint128" count="2"/>'],
}


def _lldb_maps_type(type_: str) -> bool:
    """Whether lldb 14 derives a usable encoding from a wide register's gdb type by itself.

    It knows the vec* unions, uint128 (as a vector) and i387_ext; any other type, such as the
    zmm upper halves' v2ui128, becomes an unsigned integer, which lldb then cannot read at
    256 bits (it shows the register as unavailable).
    """
    return type_.startswith("vec") or type_ in ("uint128", "i387_ext")


def render(
    table: RegisterTable, architecture: str = "i386:x86-64", *, lldb_attributes: bool = False
) -> str:
    """The target description for `table` as an XML document string."""
    out = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        "<target>",
        f"  <architecture>{architecture}</architecture>",
        "  <osabi>GNU/Linux</osabi>",
    ]
    features: list[str] = []
    for reg in table.registers:  # already in number order; features come in first-use order
        if reg.feature not in features:
            features.append(reg.feature)
    for feature in features:
        out.append(f"  <feature name={quoteattr(feature)}>")
        out += ["    " + line for line in FEATURE_TYPES.get(feature, list)()]
        for reg in table.registers:
            if reg.feature != feature:
                continue
            attrs = [
                ("name", reg.name),
                ("bitsize", str(reg.bitsize)),
                ("type", reg.type),
                ("regnum", str(reg.regnum)),
            ]
            if reg.group is not None:
                attrs.append(("group", reg.group))
            if lldb_attributes:
                if reg.dwarf is not None:
                    attrs.append(("dwarf_regnum", str(reg.dwarf)))
                if reg.ehframe is not None:
                    attrs.append(("ehframe_regnum", str(reg.ehframe)))
                if reg.generic is not None:
                    attrs.append(("generic", reg.generic))
                if reg.bitsize > 64 and not _lldb_maps_type(reg.type):
                    attrs += [("encoding", reg.lldb_encoding), ("format", reg.lldb_format)]
            out.append("    <reg " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs) + "/>")
        out.append("  </feature>")
    out.append("</target>")
    return "\n".join(out) + "\n"
