"""Parse the text of runtime.Stack(buf, true): the oracle for the goroutine tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^goroutine (\d+) \[(.*)\]:$")
_CREATED = re.compile(r"^created by (\S+?)(?: in goroutine (\d+))?$")


@dataclass
class DumpGoroutine:
    goid: int
    header: str
    state: str
    frames: list[tuple[str, str, int]] = field(default_factory=list)
    created_by: tuple[str, str, int] | None = None
    parent_goid: int | None = None
    stack_unavailable: bool = False
    elided: bool = False


def _location(line: str) -> tuple[str, int]:
    loc = line.strip().split(" +0x")[0]
    file, _, num = loc.rpartition(":")
    return file, int(num)


def parse_dump(text: str) -> list[DumpGoroutine]:
    out: list[DumpGoroutine] = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        m = _HEADER.match(lines[0])
        assert m, f"unexpected block start {lines[0]!r}"
        g = DumpGoroutine(int(m.group(1)), lines[0], m.group(2))
        i = 1
        while i < len(lines):
            line = lines[i]
            if line.startswith("\tgoroutine running on other thread"):
                g.stack_unavailable = True
                i += 1
            elif line.startswith("...") and "elided" in line:
                g.elided = True
                i += 1
            elif (c := _CREATED.match(line)) is not None:
                g.created_by = (c.group(1), *_location(lines[i + 1]))
                g.parent_goid = int(c.group(2)) if c.group(2) else None
                i += 2
            else:
                name = line[:line.rindex("(")]
                g.frames.append((name, *_location(lines[i + 1])))
                i += 2
        out.append(g)
    return out
