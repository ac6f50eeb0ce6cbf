"""packets/records.py: the frozen value classes parsed commands are made of behave as the frozen
dataclasses they replaced."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import ClassVar

import pytest

from packets import commands as cmds
from packets.records import record


@record
class Point:
    x: int
    y: int = 7
    ORIGIN: ClassVar[int] = 0


@record
class Point3(Point):
    z: tuple[int, ...] = ()


@record
class Empty:
    pass


def test_construction_positional_keyword_and_defaults() -> None:
    assert (Point(1).x, Point(1).y) == (1, 7)
    assert (Point(1, 2).x, Point(1, 2).y) == (1, 2)
    assert (Point(y=3, x=4).x, Point(y=3, x=4).y) == (4, 3)
    assert Point3(1, 2, (3,)).z == (3,)
    assert (Point3(1).y, Point3(1).z) == (7, ())
    assert Point.ORIGIN == 0 and "ORIGIN" not in Point.__match_args__


@pytest.mark.parametrize("make", [
    lambda: Point(),               # x missing
    lambda: Point(1, 2, 3),        # one too many
    lambda: Point(1, x=2),         # x twice
    lambda: Point(1, w=2),         # no such field
])
def test_bad_arguments_are_refused(make) -> None:
    with pytest.raises(TypeError):
        make()


def test_equality_and_hash_by_value_and_class() -> None:
    assert Point(1, 2) == Point(1, 2) and hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1, 2) != Point(2, 1)
    assert Point3(1, 2) != Point(1, 2)  # another class, as dataclasses compare
    assert Empty() == Empty() and hash(Empty()) == hash(Empty())
    assert len({Point(1, 2), Point(1, 2), Point(3)}) == 2


def test_repr_is_a_dataclass_repr() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert repr(Point3(1, 2, (3,))) == "Point3(x=1, y=2, z=(3,))"
    assert repr(Empty()) == "Empty()"


def test_fields_cannot_be_assigned_or_deleted() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 5
    with pytest.raises(FrozenInstanceError):
        del point.y
    assert point.x == 1


def test_parsed_commands_are_records() -> None:
    command = cmds.parse_command(b"m1000,20")
    assert command == cmds.parse_command(b"m1000,20")
    with pytest.raises(FrozenInstanceError):
        command.addr = 0  # a cached command must stay as parsed
