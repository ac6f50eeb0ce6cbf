"""What the symbol file (gosymfile.py) says of each function, read from `.gopclntab`: its line
rows, where its prologue ends, its inline tree, and the names its ABI0 twins take.

Each function here works from one Func of the table and the code bytes; the ELF and DWARF
sections are written in gosymfile.py.
"""

from __future__ import annotations

import bisect
import struct
from collections import Counter
from dataclasses import dataclass, field

from gdbstub.symbols.gopclntab import FUNC_FLAG_ASM, PCDATA_INL_TREE_INDEX, Func, Pclntab

_PUSH_RBP = 0x55
_MOV_RBP_RSP = b"\x48\x89\xe5"


@dataclass
class Inlined:
    """One call inlined into a function: a node of its inline tree."""
    callee: str
    parent: int                  # the enclosing call's index, -1 for the function itself
    call_file: int               # DWARF file number of the call site
    call_line: int
    ranges: list[list[int]] = field(default_factory=list)


@dataclass
class Function:
    func: Func
    symbol: str                  # the ELF name (with .abi0 for an ABI0 twin)
    end: int                     # end of its code (the functab entry that follows is later)
    rows: list[tuple[int, int, int]]
    prologue_end: int | None
    sp_starts: list[int]
    sp_values: list[int]
    trampoline: bool
    inlined: dict[int, Inlined]
    max_file: int
    style: str | None            # of its frame set-up (see prologue)


def value_at(starts: list[int], values: list[int], pc: int) -> int:
    i = bisect.bisect_right(starts, pc) - 1
    return values[i] if 0 <= i < len(values) else -1


def line_rows(entry: int, end: int, file_runs: tuple[list[int], list[int]],
               line_runs: tuple[list[int], list[int]]) -> list[tuple[int, int, int]]:
    """(address, DWARF file number, line) where either changes: the two tables merged."""
    fs, fv = file_runs
    ls, lv = line_runs
    if not fv or not lv:
        return []
    rows: list[tuple[int, int, int]] = []
    i = j = 0
    pc = entry
    last = None
    nf, nl = len(fv), len(lv)
    while pc < end and i < nf and j < nl:
        key = (fv[i] + 1, max(lv[j], 0))
        if key != last:
            rows.append((pc, *key))
            last = key
        next_f, next_l = fs[i + 1], ls[j + 1]
        pc = min(next_f, next_l)
        if next_f == pc:
            i += 1
        if next_l == pc:
            j += 1
    return rows


def _frame_allocation(text: bytes, base: int, end_pc: int, delta: int) -> int | None:
    """Start of the `sub $delta, %rsp` (or `add $-delta, %rsp`) that ends at end_pc."""
    k = end_pc - base
    if k >= 4 and text[k - 4] == 0x48 and text[k - 3] == 0x83 and text[k - 1] == delta & 0xFF \
            and text[k - 2] in (0xEC, 0xC4) and (text[k - 2] == 0xEC) == (delta < 0x80):
        return end_pc - 4
    if k >= 7 and text[k - 7] == 0x48 and text[k - 6] == 0x81 and text[k - 5] in (0xEC, 0xC4):
        (imm,) = struct.unpack_from("<i", text, k - 4)
        if imm == (delta if text[k - 5] == 0xEC else -delta):
            return end_pc - 7
    return None


def prologue(text: bytes, base: int, starts: list[int], values: list[int]) \
        -> tuple[str | None, int | None]:
    """(style, prologue end) from the pcsp table and the code.

    Go's assembler marks prologue_end on the instruction that allocates the frame
    (cmd/internal/obj/x86/obj6.go: the ADJSP), or on `mov %rsp, %rbp` after `push %rbp`
    when the frame is only the saved frame pointer. Style "push" is Go >= 1.21's prologue
    (push rbp first), "sub" the older one (allocate, then store rbp)."""
    for i in range(1, len(values)):
        delta = values[i] - values[i - 1]
        if delta == 0:
            continue
        if delta < 0:
            return None, None
        pc = starts[i]
        k = pc - base
        found = _frame_allocation(text, base, pc, delta)
        if found is not None:
            return "sub", found
        if delta == 8 and 0 < k <= len(text) - 3 and text[k - 1] == _PUSH_RBP \
                and text[k:k + 3] == _MOV_RBP_RSP:
            n = next((n for n in range(i + 1, len(values)) if values[n] != values[n - 1]), None)
            if n is None or values[n] < values[n - 1]:
                return "push", pc       # the frame is the saved frame pointer only
            if _frame_allocation(text, base, starts[n], values[n] - values[n - 1]) == pc + 3:
                return "push", pc + 3
        return None, None               # a hand-written frame (assembly)
    return None, None


def abi0_names(pcln: Pclntab, funcs: list[Func], wrapper_id: int) -> tuple[set[int], set[str]]:
    """Indexes of the functions Go's linker names NAME.abi0, and the names .gopclntab repeats.

    cmd/link (mangleABIName) adds `.abi0` to an ABI0 function's ELF symbol when an
    ABIInternal function of the same name exists, even one dropped as dead code. So:
      * two functions of one name: an assembly body and its ABIInternal wrapper, or a Go
        function and the ABI0 wrapper assembly calls: the assembly one, else the wrapper
        (the one whose code is `<autogenerated>`);
      * an assembly function with a Go declaration: the assembler gives it the declaration's
        argument pointer maps (FUNCDATA_ArgsPointerMaps); the compiler made its wrapper;
      * releases whose runtime assembly carries no such maps (Go <= 1.21): every assembly
        function with a package-qualified name that is not itself a wrapper. This guesses
        wrong for the runtime's few ABIInternal assembly functions (memmove, mcall, ...).
    """
    counts = Counter(f.name for f in funcs)
    twins = {name for name, n in counts.items() if n > 1}
    abi0: set[int] = set()
    by_name: dict[str, list[Func]] = {}
    asm_declared = {}
    for f in funcs:
        if f.name in twins:
            by_name.setdefault(f.name, []).append(f)
        elif f.flag & FUNC_FLAG_ASM:
            asm_declared[f.index] = bool(f.nfuncdata) and pcln.funcdata_addr(f, 0) is not None
    for group in by_name.values():
        if len(group) != 2:
            continue
        asm = [f for f in group if f.flag & FUNC_FLAG_ASM]
        made = [f for f in group if pcln.func_line(f, f.entry)[0] == "<autogenerated>"]
        wrappers = [f for f in group if f.func_id == wrapper_id and f.func_id > 0]
        for candidates in (asm, made, wrappers):
            if len(candidates) == 1:
                abi0.add(candidates[0].index)
                break
    # runtime.goexit is assembly with a Go declaration in every release: whether it has the
    # maps tells which rule the release follows.
    old_rule = not any(declared for i, declared in asm_declared.items()
                       if funcs[i].name == "runtime.goexit")
    for i, declared in asm_declared.items():
        f = funcs[i]
        if declared or (old_rule and "." in f.name and f.func_id != wrapper_id):
            abi0.add(i)
    return abi0, twins


def inline_tree(pcln: Pclntab, f: Func, file_runs, line_runs) -> dict[int, Inlined]:
    tree = pcln.inline_tree(f)
    if tree is None:
        return {}
    starts, values = pcln.pcvalue_runs(pcln.pcdata_table(f, PCDATA_INL_TREE_INDEX), f.entry)
    nodes: dict[int, Inlined] = {}

    def node(ix: int) -> Inlined:
        found = nodes.get(ix)
        if found is None:
            callee, parent_pc = pcln.inline_call(tree, ix)
            call_pc = f.entry + parent_pc
            parent = value_at(starts, values, call_pc)
            found = Inlined(callee, parent if parent != ix else -1,
                             value_at(*file_runs, call_pc) + 1,
                             max(value_at(*line_runs, call_pc), 0))
            nodes[ix] = found
        return found

    for k, ix in enumerate(values):
        lo, hi = starts[k], starts[k + 1]
        seen: set[int] = set()
        while ix >= 0 and ix not in seen:
            seen.add(ix)
            n = node(ix)
            if n.ranges and n.ranges[-1][1] == lo:
                n.ranges[-1][1] = hi
            else:
                n.ranges.append([lo, hi])
            ix = n.parent
    return nodes


def package(name: str) -> str:
    """The package path of a function name (runtime's funcpkgpath)."""
    bracket = name.find("[")
    head = name if bracket < 0 else name[:bracket]
    slash = head.rfind("/")
    dot = head.find(".", slash + 1)
    return head if dot < 0 else head[:dot]
