"""Go runtime struct offsets read from a binary's DWARF (the source of the generated table).

tools/gen_go_offsets.py runs this over a DWARF build of each toolchain and writes
go_offsets_table.py; goruntime.py also uses it directly on a binary that still has DWARF
and whose Go version is not in the table.

The fields are the ones the goroutine and panic views read (`FIELDS`: a name, the Go type,
a dotted member path). A type or a path part may list alternatives separated by `|`, the
first one present wins: types renamed between releases (runtime._type became an alias of
internal/abi.Type in 1.21, its fields capitalised). A member whose type is a struct with a
single `value` member (atomic.Uint32 and friends, Go >= 1.20) resolves to that value.
Fields missing from a release (g.parentGoid before 1.21, _panic.repanicked before 1.25)
are -1.

API:
    FIELDS: dict[str, tuple[str, str]]
    read_offsets(elf) -> dict[str, int] | None   (None when the binary has no runtime DWARF)
"""

from __future__ import annotations

from typing import Any

from gdbstub.symbols.elf_file import ElfFile

_TYPE = "internal/abi.Type|runtime._type"
_FIELD = "internal/abi.StructField|runtime.structfield"

# name -> (Go type, member path). "<size>" is the byte size of the type itself.
FIELDS: dict[str, tuple[str, str]] = {
    "g_size": ("runtime.g", "<size>"),
    "g_stack_lo": ("runtime.g", "stack.lo"),
    "g_stack_hi": ("runtime.g", "stack.hi"),
    "g_sched_sp": ("runtime.g", "sched.sp"),
    "g_sched_pc": ("runtime.g", "sched.pc"),
    "g_sched_bp": ("runtime.g", "sched.bp"),
    "g_syscallsp": ("runtime.g", "syscallsp"),
    "g_syscallpc": ("runtime.g", "syscallpc"),
    "g_m": ("runtime.g", "m"),
    "g_atomicstatus": ("runtime.g", "atomicstatus"),
    "g_goid": ("runtime.g", "goid"),
    "g_waitsince": ("runtime.g", "waitsince"),
    "g_waitreason": ("runtime.g", "waitreason"),
    "g_lockedm": ("runtime.g", "lockedm"),
    "g_startpc": ("runtime.g", "startpc"),
    "g_gopc": ("runtime.g", "gopc"),
    "g_parent_goid": ("runtime.g", "parentGoid"),
    "m_size": ("runtime.m", "<size>"),
    "m_g0": ("runtime.m", "g0"),
    "m_id": ("runtime.m", "id"),
    "m_procid": ("runtime.m", "procid"),
    "m_curg": ("runtime.m", "curg"),
    "m_alllink": ("runtime.m", "alllink"),
    "m_vdso_sp": ("runtime.m", "vdsoSP"),
    "m_vdso_pc": ("runtime.m", "vdsoPC"),
    "moduledata_text": ("runtime.moduledata", "text"),
    "moduledata_etext": ("runtime.moduledata", "etext"),
    "moduledata_gofunc": ("runtime.moduledata", "gofunc"),
    # Panics (gopanic.py): g._panic, the _panic chain, and enough of the runtime's type
    # descriptors to name a panic value's type and read it.
    "g_panic": ("runtime.g", "_panic"),
    "g_sig": ("runtime.g", "sig"),               # the signal a panic came from (nil deref)
    "g_sigcode0": ("runtime.g", "sigcode0"),
    "g_sigcode1": ("runtime.g", "sigcode1"),
    "g_sigpc": ("runtime.g", "sigpc"),
    "panic_arg": ("runtime._panic", "arg"),
    "panic_link": ("runtime._panic", "link"),
    "panic_recovered": ("runtime._panic", "recovered"),
    "panic_goexit": ("runtime._panic", "goexit"),
    "panic_repanicked": ("runtime._panic", "repanicked"),
    "moduledata_types": ("runtime.moduledata", "types"),
    "moduledata_etypes": ("runtime.moduledata", "etypes"),
    "type_size": (_TYPE, "<size>"),
    "type_tflag": (_TYPE, "TFlag|tflag"),
    "type_kind": (_TYPE, "Kind_|kind"),
    "type_str": (_TYPE, "Str|str"),
    "ptrtype_elem": ("internal/abi.PtrType|runtime.ptrtype", "Elem|elem"),
    "structtype_fields": ("internal/abi.StructType|runtime.structtype", "Fields|fields"),
    "structfield_size": (_FIELD, "<size>"),
    "structfield_name": (_FIELD, "Name|name"),
    "structfield_typ": (_FIELD, "Typ|typ"),
    "structfield_offset": (_FIELD, "Offset|offset"),   # not offsetAnon (offset<<1, < 1.19)
    "sigtab_size": ("runtime.sigTabT", "<size>"),
    "sigtab_name": ("runtime.sigTabT", "name"),
}
# Array lengths of runtime variables: name -> variable.
ARRAY_LENGTHS: dict[str, str] = {"wait_reason_count": "runtime.waitReasonStrings",
                                 "sigtable_count": "runtime.sigtable"}


def read_offsets(elf: ElfFile) -> dict[str, int] | None:
    if elf.section(".debug_info") is None and elf.section(".zdebug_info") is None:
        return None
    dwarf = elf._elf.get_dwarf_info()  # pyelftools, on the same mapping
    wanted_types = {name for t, _ in FIELDS.values() for name in t.split("|")}
    structs: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        name = _name(top)
        if name != "runtime":
            continue
        for die in top.iter_children():
            n = _name(die)
            if die.tag == "DW_TAG_structure_type" and n in wanted_types and n not in structs:
                structs[n] = die
            elif die.tag == "DW_TAG_variable" and n in ARRAY_LENGTHS.values():
                variables[n] = die
    if "runtime.g" not in structs:
        return None
    out: dict[str, int] = {}
    for key, (type_names, path) in FIELDS.items():
        die = next((structs[t] for t in type_names.split("|") if t in structs), None)
        out[key] = -1 if die is None else _offset(die, path)
    for key, var in ARRAY_LENGTHS.items():
        out[key] = _array_length(variables[var]) if var in variables else -1
    return out


def _name(die: Any) -> str | None:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode() if attr is not None else None


def _members(die: Any) -> dict[str, Any]:
    return {_name(c): c for c in die.iter_children() if c.tag == "DW_TAG_member"}


def _type(die: Any) -> Any:
    t = die.get_DIE_from_attribute("DW_AT_type")
    while t.tag in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type"):
        t = t.get_DIE_from_attribute("DW_AT_type")
    return t


def _offset(struct_die: Any, path: str) -> int:
    if path == "<size>":
        return struct_die.attributes["DW_AT_byte_size"].value
    offset = 0
    die = struct_die
    member = None
    for part in path.split("."):
        members = _members(die)
        member = next((members[p] for p in part.split("|") if p in members), None)
        if member is None:
            return -1
        offset += member.attributes["DW_AT_data_member_location"].value
        die = _type(member)
    # atomic.Uint32 / atomic.Uint64 / atomic.Uintptr wrap a single `value`.
    if die.tag == "DW_TAG_structure_type":
        inner = _members(die).get("value")
        if inner is not None:
            offset += inner.attributes["DW_AT_data_member_location"].value
    return offset


def _array_length(var: Any) -> int:
    t = _type(var)
    if t.tag != "DW_TAG_array_type":
        return -1
    for sub in t.iter_children():
        if sub.tag == "DW_TAG_subrange_type":
            if "DW_AT_count" in sub.attributes:
                return sub.attributes["DW_AT_count"].value
            if "DW_AT_upper_bound" in sub.attributes:
                return sub.attributes["DW_AT_upper_bound"].value + 1
    return -1
