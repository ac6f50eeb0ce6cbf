"""The Go runtime of a debugged process, as the server shows it to any client.

Built on gdbstub.symbols (which reads the binary and memory) and the process controller (which
gives registers and memory): goroutine-named threads, the goroutine list and backtraces for the
monitor commands, symbol lookup, and the internal breakpoints that stop an unrecovered panic or
a fatal error before the program exits. Everything is read from the program's own memory and
its .gopclntab, so it works on stripped binaries and needs no help from the client.
"""

from __future__ import annotations

import logging
import signal
import struct
from dataclasses import dataclass

from .arch.x86_64 import USER_REGS_FIELDS
from .symbols import gotraceback
from .symbols.cframes import MappedObjects
from .symbols.elf_file import parse_proc_maps
from .symbols.gocgo import CgoCall, cgo_call
from .symbols.gobinary import GoBinary, NotGoBinary
from .symbols.gopanic import FatalHit
from .symbols.goruntime import (
    G_SYSCALL, Frame, GoRuntime, GoRuntimeError, Goroutine, RuntimeNotReady, ThreadState,
)
from .process import Inferior, PtraceError, StopEvent, StopKind, TargetError, procfs

log = logging.getLogger("gdbstub.go")

AT_ENTRY = 9
_GPR = struct.Struct("<27Q")
_RBP, _RIP, _RSP, _FS_BASE = (USER_REGS_FIELDS.index(name) for name in ("rbp", "rip", "rsp", "fs_base"))
_RAX, _RBX = USER_REGS_FIELDS.index("rax"), USER_REGS_FIELDS.index("rbx")
# psABI DWARF number -> index in user_regs_struct, for the C unwinder (16: the pc).
_DWARF_GPR = {n: USER_REGS_FIELDS.index(name) for n, name in enumerate(
    "rax rdx rcx rbx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip".split())}

# Where an unrecovered panic or a fatal error passes before the program dies, and what we tell
# the user when it does. Not every Go version has every one.
FATAL_FUNCTIONS = {
    "runtime.fatalpanic": "Go runtime: unrecovered panic",
    "runtime.throw": "Go runtime: fatal error",
    "runtime.fatal": "Go runtime: fatal error",
    "runtime.fatalsignal": "Go runtime: fatal signal",
}


def _hit_key(hit: FatalHit) -> tuple[int, str]:
    """What makes two hits one: the goroutine (its g; the thread when unreadable) and the
    function."""
    return (hit.g or -hit.tid, hit.function)


class GoNotReady(Exception):
    """The runtime has not set up its goroutines yet (or cannot be read); the text says why."""


@dataclass(frozen=True)
class ThreadLabel:
    name: str   # short, for thread lists: "g7 main.worker"
    text: str   # longer: "goroutine 7 [chan receive] main.worker /src/main.go:42"


class GoView:
    def __init__(self, inferior: Inferior, binary: GoBinary) -> None:
        self.inferior = inferior
        self.binary = binary
        self.load_bias = self._load_bias()
        self._runtime: GoRuntime | None = None
        self._fatal: dict[int, str] = {}
        # Entry address -> name of every FATAL_FUNCTIONS function the program has, and the
        # threads that reached one, in order (gopanic.py reads the panic or error from them).
        self._fatal_names: dict[int, str] = {}
        self._fatal_hits: list[FatalHit] = []
        # _hit_key of the hits our breakpoints caught (and so made a stop of).
        self._fatal_caught: set[tuple[int, str]] = set()
        self._cache_generation = -1
        self._goroutines: list[Goroutine] | None = None
        self._labels: dict[int, ThreadLabel] | None = None
        self._locations: dict[int, str] = {}
        self._locations_generation = -1
        self._labels_generation = -1
        # The goroutines-as-threads view of the process (goroutine_threads.py), made by the
        # session when that view is on.
        self.client_threads = None
        # The process's mapped objects, for C frames in cgo calls (re-read once per stop).
        self._objects = MappedObjects()
        self._objects_generation = -1

    @classmethod
    def open(cls, inferior: Inferior) -> GoView | None:
        """A view if the program is a Go program we can read, else None."""
        try:
            binary = GoBinary(inferior.executable)
            binary.pclntab  # noqa: B018 - fail here, not at the first stop
        except (NotGoBinary, OSError, ValueError) as exc:
            log.debug("not a Go program: %s", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a Go binary we cannot read is still debuggable
            log.warning("cannot read the Go tables of %s: %s", inferior.executable, exc)
            return None
        return cls(inferior, binary)

    def _load_bias(self) -> int:
        try:
            entry = procfs.auxv(self.inferior.pid).get(AT_ENTRY)
        except OSError:
            return 0
        return self.binary.elf.load_bias_from_entry(entry) if entry else 0

    # -- set-up ------------------------------------------------------------------------------
    def attach_to_process(self) -> None:
        """Quiet the runtime's preemption signals and stop fatal panics before exit."""
        inferior = self.inferior
        inferior.quiet_runtime_sigurg = True
        inferior.on_internal_breakpoint = self._on_fatal_hit
        for name, description in FATAL_FUNCTIONS.items():
            func = self.binary.func_by_name(name)
            if func is None:
                continue
            addr = func.entry + self.load_bias
            self._fatal_names[addr] = name
            try:
                inferior.breakpoints.insert(addr, internal=True)
            except Exception as exc:  # noqa: BLE001 - the program runs on without this stop
                log.warning("cannot watch %s at %#x: %s", name, addr, exc)
                continue
            self._fatal[addr] = description

    def _on_fatal_hit(self, thread, addr: int) -> StopEvent | None:
        description = self._fatal.get(addr)
        if description is None:
            return None
        try:
            hit = self._fatal_hit_at(thread.tid, addr, thread.gpr())
        except (OSError, PtraceError, TargetError) as exc:  # the stop matters more
            log.warning("cannot read the registers of thread %d at %#x: %s", thread.tid, addr, exc)
            return StopEvent(StopKind.RUNTIME, thread.tid, signal.SIGTRAP, description=description)
        key = _hit_key(hit)
        if key in self._fatal_caught:
            # Caught already. A fatal function never returns: the same goroutine is at its
            # entry again only because the runtime's preemption signal (SIGURG, frequent on the
            # way to dying) came at the entry: its handler returned there, or preempted the
            # goroutine and resumed it there. It goes on unreported. (The key is the g, not
            # the thread: once preempted, another goroutine may die on that thread.)
            return None
        self._fatal_caught.add(key)
        self._remember(hit)
        return StopEvent(StopKind.RUNTIME, thread.tid, signal.SIGTRAP, description=description)

    def _fatal_hit_at(self, tid: int, addr: int, gpr: bytes) -> FatalHit:
        """A thread at a fatal function's entry, with what only the entry shows: the argument
        registers (Go's register ABI: RAX, RBX) and the g it runs (its TLS slot, which the
        function's systemstack calls change)."""
        regs = _GPR.unpack(gpr)
        try:
            g = self.runtime.current_g(regs[_FS_BASE])
        except (GoNotReady, GoRuntimeError, OSError):
            g = None
        return FatalHit(self._fatal_names[addr], tid, g, regs[_RAX], regs[_RBX])

    def _remember(self, hit: FatalHit) -> None:
        if all(_hit_key(h) != _hit_key(hit) for h in self._fatal_hits):
            self._fatal_hits.append(hit)

    def fatal_hits(self) -> list[FatalHit]:
        """The threads that reached a function a Go program dies through, in order: those our
        breakpoints stopped, then any stopped thread at such a function's entry that they did
        not see (a client's breakpoint there is reported instead of ours, or the thread stopped
        just before the int3). A fatal function never returns: a hit stays true until the
        process is gone."""
        for tid in self.inferior.thread_ids():
            try:
                thread = self.inferior.thread(tid)
                if thread.running:
                    continue
                gpr = thread.gpr()
                addr = _GPR.unpack(gpr)[_RIP]
                if addr in self._fatal_names:
                    self._remember(self._fatal_hit_at(tid, addr, gpr))
            except (OSError, PtraceError, TargetError):
                continue
        return list(self._fatal_hits)

    # -- reading the runtime -----------------------------------------------------------------
    @property
    def runtime(self) -> GoRuntime:
        if self._runtime is None:
            try:
                # The runtime's data (g, m, stacks) holds none of our breakpoint bytes: its
                # reads skip the shadowing that code reads need (10,000 goroutines, 20,000 reads).
                self._runtime = GoRuntime(self.binary, self.inferior.memory.read, load_bias=self.load_bias)
            except GoRuntimeError as exc:
                raise GoNotReady(str(exc)) from None
        return self._runtime

    def thread_states(self) -> list[ThreadState]:
        states = []
        for tid in self.inferior.thread_ids():
            thread = self.inferior.thread(tid)
            if thread.running:
                continue
            regs = _GPR.unpack(thread.gpr())
            states.append(ThreadState(tid, regs[_RIP], regs[_RSP], regs[_RBP], regs[_FS_BASE]))
        return states

    def direct_goid(self, tid: int) -> int | None:
        """The goroutine a stopped thread runs: on that goroutine's own stack, or the C code
        of its cgo call (on the thread's system stack). None otherwise."""
        try:
            regs = _GPR.unpack(self.inferior.thread(tid).gpr())
            state = ThreadState(tid, regs[_RIP], regs[_RSP], regs[_RBP], regs[_FS_BASE])
            runtime = self.runtime
            goid = runtime.running_goid(state)
            if goid is None and self._func_name_at(state.pc) is None:
                goid = runtime.cgo_call_goid(state)
            return goid
        except (GoNotReady, GoRuntimeError, OSError, PtraceError, TargetError):
            return None

    def goroutines(self) -> list[Goroutine]:
        """Every live goroutine, read once per stop."""
        if self._cache_generation == self.inferior.generation and self._goroutines is not None:
            return self._goroutines
        self._goroutines = self._read_goroutines()
        self._cache_generation = self.inferior.generation
        return self._goroutines

    def _read_goroutines(self) -> list[Goroutine]:
        try:
            return self.runtime.goroutines(self.thread_states())
        except RuntimeNotReady as exc:
            raise GoNotReady(str(exc)) from None
        except GoRuntimeError as exc:
            raise GoNotReady(str(exc)) from None

    def goroutine(self, goid: int) -> Goroutine | None:
        return next((g for g in self.goroutines() if g.goid == goid), None)

    def backtrace(self, g: Goroutine, elide: bool = True) -> list[Frame]:
        frames = self.runtime.backtrace(g)
        if elide:
            frames = gotraceback.visible_frames(frames, self.runtime.wrapper_func_id)
        return frames

    def cgo_call(self, g: Goroutine) -> CgoCall | None:
        """The C frames of a goroutine inside a cgo call (symbols/gocgo.py), or None when its
        thread is not stopped in C code."""
        tid = g.thread_id
        if g.status != G_SYSCALL or tid is None or not self.inferior.has_thread(tid):
            return None
        thread = self.inferior.thread(tid)
        if thread.running:
            return None
        try:
            gpr = _GPR.unpack(thread.gpr())
            if self._objects_generation != self.inferior.generation:
                with open(f"/proc/{self.inferior.pid}/maps") as maps:
                    self._objects.update(parse_proc_maps(maps.read()))
                self._objects_generation = self.inferior.generation
        except (OSError, PtraceError, TargetError):
            return None
        regs = {n: gpr[i] for n, i in _DWARF_GPR.items()}
        return cgo_call(g, regs, self.inferior.memory.read, self._objects, self._func_name_at)

    def _func_name_at(self, pc: int) -> str | None:
        func = self.binary.func_at(pc - self.load_bias)
        return func.name if func is not None else None

    def user_location(self, g: Goroutine) -> str:
        """Where the goroutine's own code is: its innermost user frame (its top frame for the
        runtime's goroutines, which have none). Remembered for the rest of the stop."""
        if self._locations_generation != self.inferior.generation:
            self._locations = {}
            self._locations_generation = self.inferior.generation
        text = self._locations.get(g.goid)
        if text is None:
            runtime = self.runtime
            found = (runtime.first_frame(g, gotraceback.is_user_function)
                     or runtime.first_frame(g, lambda name: True))
            if found is None:
                text = "?"
            else:
                text = f"{gotraceback.func_name_for_print(found[0])} {found[1]}:{found[2]}"
            self._locations[g.goid] = text
        return text

    def thread_labels(self) -> dict[int, ThreadLabel]:
        """Each thread that runs a goroutine, labelled with it (computed once per stop)."""
        if self._labels is not None and self._labels_generation == self.inferior.generation:
            return self._labels
        self._labels = self._compute_labels()
        self._labels_generation = self.inferior.generation
        return self._labels

    def _compute_labels(self) -> dict[int, ThreadLabel]:
        try:
            if self._cache_generation == self.inferior.generation and self._goroutines is not None:
                goroutines = self._goroutines
            else:
                # Only the goroutines that have a thread: a thread list must not cost a read
                # of every goroutine.
                goroutines = self.runtime.thread_goroutines(self.thread_states())
        except (GoNotReady, RuntimeNotReady, GoRuntimeError):
            return {}
        labels = {}
        for g in goroutines:
            if g.thread_id is None or not self.inferior.has_thread(g.thread_id):
                continue
            name = f"g{g.goid} {g.start_function}"
            text = f"goroutine {g.goid} [{gotraceback.status_text(g)}] {self.user_location(g)}"
            labels[g.thread_id] = ThreadLabel(name, text)
        return labels

    def symbolize(self, addr: int) -> str | None:
        link = addr - self.load_bias
        func = self.binary.func_at(link)
        if func is None:
            return None
        frames = self.binary.frames_at(link)
        name = func.name
        file, line = self.binary.line_at(link)
        offset = link - func.entry
        inner = ""
        if frames and frames[0].inlined:
            inner = f" (inlined {frames[0].function} at {frames[0].file}:{frames[0].line})"
        return f"{name} + {offset:#x} at {file}:{line}{inner}" if offset else f"{name} at {file}:{line}{inner}"
