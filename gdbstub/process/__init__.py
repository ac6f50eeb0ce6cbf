"""The process controller: launch/attach, threads, stops, resume, memory, registers, breakpoints.

It speaks in threads, addresses and stop events, and knows nothing of the remote protocol.
"""

from .events import StopEvent, StopKind
from .inferior import Inferior, TargetError
from .launch import LaunchError, Started, attach, launch, resolve_program
from .process_set import ProcessSet
from .ptrace_calls import PtraceError
from .run_settings import RunSettings
from .threads import Resume
from .tracer import Tracer

__all__ = [
    "Inferior", "LaunchError", "ProcessSet", "PtraceError", "Resume", "RunSettings", "Started", "StopEvent", "StopKind", "TargetError",
    "Tracer", "attach", "launch", "resolve_program",
]
