"""The server's own logs: where they go, how much, and their format (--debug and friends, and
the `monitor set debug...` commands that change them while a client is connected)."""

from __future__ import annotations

import logging
import sys

ROOT = "gdbstub"
PACKETS = "gdbstub.packets"
_PLAIN = "%(name)s: %(message)s"
_TIMESTAMPED = "%(asctime)s %(name)s: %(message)s"


def configure(debug: bool, remote_debug: bool, debug_file: str | None, timestamps: bool = False) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(debug_file) if debug_file else logging.StreamHandler(sys.stderr)
    root = logging.getLogger(ROOT)
    root.addHandler(handler)
    set_timestamps(timestamps)
    set_debug(debug, remote_debug)


def set_debug(debug: bool, remote_debug: bool | None = None) -> None:
    """General debugging messages on or off; `remote_debug`, when given, every packet too."""
    level = logging.DEBUG if debug else logging.INFO if remote_debug else logging.WARNING
    logging.getLogger(ROOT).setLevel(level)
    if remote_debug is not None:
        # Both flags log every packet, as the --debug of a stub is mostly read for the packets.
        set_remote_debug(debug or remote_debug)


def set_remote_debug(on: bool) -> None:
    logging.getLogger(PACKETS).setLevel(logging.DEBUG if on else logging.WARNING)


def set_timestamps(on: bool) -> None:
    """Each log line starts with the time (gdbserver's debug-format 'timestamp')."""
    for handler in logging.getLogger(ROOT).handlers:
        handler.setFormatter(logging.Formatter(_TIMESTAMPED if on else _PLAIN))


_FORMAT_OPTIONS = {
    "all": (True, "All extra debug format options enabled."),
    "none": (False, "All extra debug format options disabled."),
    "timestamp": (True, "Timestamps will be added to debug output."),
}


def parse_debug_format(text: str) -> tuple[bool, list[str]]:
    """gdbserver's debug-format list (`all`, `none`, `timestamp`, comma-separated, taken in
    order, empty items ignored): whether timestamps end up on, and what gdbserver says for
    each option. An unknown option is a ValueError with gdbserver's message."""
    timestamps, said = False, []
    for option in text.strip().split(","):
        if not option:
            continue
        if option not in _FORMAT_OPTIONS:
            raise ValueError(f'Unknown debug-format argument: "{option}"')
        timestamps, message = _FORMAT_OPTIONS[option]
        said.append(message)
    return timestamps, said
