"""What a session has agreed with its client: acks or not, the features it offered, the
selected threads, extended and non-stop modes. Plain data, set by the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProtocolState:
    no_ack: bool = False
    features: dict[str, str | bool] = field(default_factory=dict)
    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    error_strings: bool = False
    general_thread: int = 0   # 0: the thread of the last stop
    continue_thread: int = -1
    supported_seen: bool = False
    # The client's qSupported offered no xmlRegisters (gdb with `set remote
    # target-features-packet off`): registers go in gdb's built-in amd64 layout.
    builtin_registers: bool = False
    no_ack_came_first: bool = False
    thread_suffix: bool = False
    extended: bool = False
    threads_in_stop_reply: bool = False
    non_stop: bool = False
