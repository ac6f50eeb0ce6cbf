"""A sans-IO codec for the GDB remote serial protocol (RSP).

Bytes in, events out (:mod:`packets.framing`); packet payloads in, typed commands out
(:mod:`packets.commands`); reply payloads built from values (:mod:`packets.replies`). Nothing
here does I/O or knows about processes, so all of it is testable with plain bytes.
"""

from .commands import Command, MalformedCommand, ThreadId, Unknown, parse_command, register
from .framing import (
    Ack,
    BadChecksum,
    Decoder,
    Event,
    Interrupt,
    Nak,
    Notification,
    Overlong,
    Packet,
    checksum,
    escape_binary,
    frame,
    frame_notification,
    rle_decode,
    rle_encode,
    unescape_binary,
)
from .replies import (
    OK,
    console_output,
    error,
    exited,
    hex_decode,
    hex_encode,
    stop_reply,
    terminated,
    vfile_result,
    xfer_chunk,
)

__all__ = [
    "OK",
    "Ack",
    "BadChecksum",
    "Command",
    "Decoder",
    "Event",
    "Interrupt",
    "MalformedCommand",
    "Nak",
    "Notification",
    "Overlong",
    "Packet",
    "ThreadId",
    "Unknown",
    "checksum",
    "console_output",
    "error",
    "escape_binary",
    "exited",
    "frame",
    "frame_notification",
    "hex_decode",
    "hex_encode",
    "parse_command",
    "register",
    "rle_decode",
    "rle_encode",
    "stop_reply",
    "terminated",
    "unescape_binary",
    "vfile_result",
    "xfer_chunk",
]
from . import launch_commands  # noqa: E402,F401  (registers lldb and launch-settings commands)
