"""Starting a program under ptrace, or attaching to a running one.

Launch runs no Python between fork and exec: `os.posix_spawn` starts a tiny shell shim that stops
itself, we PTRACE_SEIZE it, let it go, and it execs the program; the exec event is the program's
first stop. The shim's exec keeps the pid, so the program is a direct child of the server (tools
that start gdbserver rely on that). Both functions block briefly and must run before the trio wait
loop sees these children's events: nothing awaits in between.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import time
from dataclasses import dataclass, field

from . import ptrace_calls as pt

_SHIM = 'kill -STOP $$; exec "$0" "$@"'
_WAIT_ALL = 0x40000000  # __WALL
# New threads, forked and vforked children are traced from their first instruction (a child
# the client does not want is detached at its first stop, without the parent's int3 bytes).
TRACE_OPTIONS = (pt.PTRACE_O_TRACECLONE | pt.PTRACE_O_TRACEFORK | pt.PTRACE_O_TRACEVFORK
                 | pt.PTRACE_O_TRACEVFORKDONE | pt.PTRACE_O_TRACEEXEC | pt.PTRACE_O_TRACESYSGOOD
                 | pt.PTRACE_O_TRACEEXIT)
# CPython ignores these at start-up, and an ignored signal stays ignored across exec: the
# programs started here get them at their default, as from a shell or gdbserver (subprocess's
# restore_signals resets the same two).
_IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)
# How long attaching waits for each thread's stop before going on without it.
ATTACH_STOP_TIMEOUT = 5.0


class LaunchError(Exception):
    """The program could not be started or attached to; the message is for the user."""


@dataclass
class Started:
    pid: int
    tids: list[int]
    executable: str
    # Attached threads that did not stop within ATTACH_STOP_TIMEOUT (uninterruptible sleep):
    # asked to stop, they stop when they can.
    unstopped: list[int] = field(default_factory=list)


def resolve_program(program: str) -> str:
    """Find the program the way gdbserver does: a name with a slash or in cwd, else $PATH."""
    if "/" not in program and not os.path.exists(program):
        found = shutil.which(program)
        if found is None:
            raise LaunchError(f"{program}: No such file or directory")
        program = found
    path = os.path.abspath(program)
    if not os.path.exists(path):
        raise LaunchError(f"{program}: No such file or directory")
    if os.path.isdir(path):
        raise LaunchError(f"{program}: Is a directory")
    if not os.access(path, os.X_OK):
        raise LaunchError(f"{program}: Permission denied (not executable)")
    return path


_ELF_MAGIC = b"\x7fELF"
_EM_X86_64 = 62


def foreign_program(path: str) -> str | None:
    """What keeps gdbstub from debugging the program at `path` (an ELF file for another
    architecture, such as a 32-bit i386 one), or None. Anything else (a script) is left to
    the kernel: what it runs is checked when it runs."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != _ELF_MAGIC:
        return None
    if header[4] == 1:
        return "a 32-bit (i386) program: gdbstub debugs x86-64 programs only"
    if int.from_bytes(header[18:20], "little") != _EM_X86_64:
        return "a program for another architecture: gdbstub debugs x86-64 programs only"
    return None


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, _WAIT_ALL | os.WUNTRACED)
            return status
        except InterruptedError:
            continue


def launch(program: str, args: list[str], env: dict[str, str] | None = None,
           cwd: str | None = None, protocol_on_stdio: bool = False,
           stdio_paths: dict[int, str] | None = None, wrapper: list[str] | None = None,
           shell: str | None = None) -> Started:
    """Start `program`; with `protocol_on_stdio` its stdin is /dev/null and its stdout goes to
    our stderr, because our stdin/stdout carry the protocol. `stdio_paths` sends fds 0-2 to files.
    A `wrapper` command (gdbserver's --wrapper) is run with the program and its arguments
    after its own, and must exec the program. With a `shell`, the program (and the wrapper)
    start as `SHELL -c "exec ..."`, every word quoted, as gdbserver starts them. Each exec
    before the program's is let through: the program's is the first stop."""
    if cwd is not None and "/" not in program and os.path.exists(os.path.join(cwd, program)):
        program = os.path.join(cwd, program)
    path = resolve_program(program)
    foreign = foreign_program(path)
    if foreign is not None:
        raise LaunchError(f"{program}: {foreign}")
    file_actions: list[tuple] = []
    if protocol_on_stdio:
        file_actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, 2, 1)]
    for fd, target in sorted((stdio_paths or {}).items()):
        flags = os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_APPEND
        file_actions.append((os.POSIX_SPAWN_OPEN, fd, target, flags, 0o644))
    environ = dict(os.environ if env is None else env)
    # The shell exports PWD on its own; a program asked to start without it must not get it.
    shim = _SHIM if "PWD" in environ else "unset PWD; " + _SHIM
    command = [*(wrapper or []), path, *args]
    execs_to_pass = 1 if wrapper else 0
    if shell is not None:
        command = [shell, "-c", "exec " + " ".join(shlex.quote(word) for word in command)]
        execs_to_pass += 1
    argv = ["/bin/sh", "-c", shim, *command]
    old_cwd = None
    if cwd is not None:
        if not os.path.isdir(cwd):
            raise LaunchError(f"{cwd}: No such directory")
        old_cwd = os.getcwd()
        os.chdir(cwd)
    try:
        # The server blocks SIGCHLD (it reads it from a signalfd); the program starts unblocked.
        pid = os.posix_spawn("/bin/sh", argv, environ, file_actions=file_actions, setsigmask=(),
                             setsigdef=_IGNORED_BY_PYTHON)
    finally:
        if old_cwd is not None:
            os.chdir(old_cwd)

    status = _wait(pid)
    if not os.WIFSTOPPED(status):
        raise LaunchError(f"{program}: the launcher shell ended early (status {status:#x})")
    try:
        pt.seize(pid, TRACE_OPTIONS | pt.PTRACE_O_EXITKILL)
    except pt.PtraceError as exc:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise LaunchError(f"cannot trace {program}: {os.strerror(exc.errno or errno.EPERM)}") from None
    os.kill(pid, signal.SIGCONT)

    # Run the shim until its exec: absorb the group-stop and SIGCONT on the way.
    while True:
        status = _wait(pid)
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            raise LaunchError(f"{program}: could not be executed (shell exit code {code})")
        if os.WIFSIGNALED(status):
            raise LaunchError(f"{program}: killed by signal {os.WTERMSIG(status)} before exec")
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if event == pt.PTRACE_EVENT_EXEC and execs_to_pass:
            execs_to_pass -= 1  # the shell's or the wrapper's: the program's comes later
            pt.cont(pid, 0)
            continue
        if event == pt.PTRACE_EVENT_EXEC:
            _finish_exec_syscall(pid)
            break
        if event == pt.PTRACE_EVENT_STOP or sig in (signal.SIGCONT, signal.SIGSTOP):
            pt.cont(pid, 0)
        else:
            pt.cont(pid, sig)
    return Started(pid=pid, tids=[pid], executable=os.readlink(f"/proc/{pid}/exe"))


def _finish_exec_syscall(pid: int) -> None:
    """The exec event stops inside execve, where rax still holds -ENOSYS: run to the syscall's
    exit so the first stop shows the registers the program starts with (as gdbserver and
    lldb-server do), without executing any of its instructions."""
    pt.syscall(pid, 0)
    while True:
        status = _wait(pid)
        if not os.WIFSTOPPED(status):
            raise LaunchError(f"the program ended during exec (status {status:#x})")
        if os.WSTOPSIG(status) == signal.SIGTRAP | 0x80:
            return
        # Anything else (a signal queued before exec) stays pending for the program.
        pt.syscall(pid, os.WSTOPSIG(status) if (status >> 16) == 0 else 0)


def attach(pid: int) -> Started:
    """Seize every thread of `pid` and stop each one."""
    if not os.path.exists(f"/proc/{pid}"):
        raise LaunchError(f"Cannot attach to process {pid}: No such process")
    foreign = foreign_program(f"/proc/{pid}/exe")
    if foreign is not None:
        raise LaunchError(f"Cannot attach to process {pid}: {foreign}")
    stopped: set[int] = set()
    unstopped: set[int] = set()
    gone: set[int] = set()
    deadline = time.monotonic() + ATTACH_STOP_TIMEOUT
    while True:
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except FileNotFoundError:
            raise LaunchError(f"Cannot attach to process {pid}: No such process") from None
        new = [t for t in tids if t not in stopped and t not in unstopped and t not in gone]
        if not new:
            break
        for tid in new:
            try:
                pt.seize(tid, TRACE_OPTIONS)
                pt.interrupt(tid)
            except pt.PtraceError as exc:
                if exc.errno == errno.ESRCH and tid != pid:
                    gone.add(tid)
                    continue
                if exc.errno in (errno.EPERM, errno.EACCES):
                    raise LaunchError(f"Cannot attach to process {pid}: Operation not permitted") from None
                raise LaunchError(f"Cannot attach to process {pid}: {os.strerror(exc.errno or 0)}") from None
            if _absorb_attach_stop(tid, deadline):
                stopped.add(tid)
            else:
                unstopped.add(tid)
    return Started(pid=pid, tids=sorted(stopped | unstopped), executable=os.readlink(f"/proc/{pid}/exe"),
                   unstopped=sorted(unstopped))


def _absorb_attach_stop(tid: int, deadline: float) -> bool:
    """Wait for the stop PTRACE_INTERRUPT asked for, until `deadline`: a thread in
    uninterruptible sleep stops only when it leaves it. False if it has not stopped."""
    while True:
        waited, status = os.waitpid(tid, _WAIT_ALL | os.WNOHANG)
        if waited == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)  # bounded: attaching blocks nothing else yet
            continue
        if not os.WIFSTOPPED(status):
            return True
        if (status >> 16) == pt.PTRACE_EVENT_STOP:
            return True
        # A signal arrived first: it stays pending in the thread and is delivered when it resumes.
        sig = os.WSTOPSIG(status)
        pt.cont(tid, sig)
        pt.interrupt(tid)
