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
    (values and floats: govalues.py)
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Sequence

from gdbstub.symbols.goruntime_types import Goroutine
from gdbstub.symbols.govalues import GoValueError, GoValueReader, hex_address
from gdbstub.symbols.gotraceback import goroutine_header, is_system_goroutine

FATALPANIC = "runtime.fatalpanic"
THROW_FUNCTIONS = frozenset({"runtime.throw", "runtime.fatal"})
FATALSIGNAL = "runtime.fatalsignal"

_MAX_CHAIN = 1000


# What cannot be read here, the panic as the values in it.
PanicError = GoValueError


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


class PanicReader(GoValueReader):
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
        head = f"[signal {name}" if name else f"[signal {hex_address(sig)}"
        return (f"{head} code={hex_address(self._u64(g + self._field('g_sigcode0')))} "
                f"addr={hex_address(self._u64(g + self._field('g_sigcode1')))} "
                f"pc={hex_address(self._u64(g + self._field('g_sigpc')))}]\n")

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
