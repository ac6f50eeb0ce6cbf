"""Frozen value classes for parsed commands, created without a compile per class.

`@dataclass(frozen=True)` compiles five or six functions for each class it decorates: about
0.6 ms a class here, and the ~90 command classes made that 55-85 ms of every server's start
(a sixth of the time to the first stop). `@record` gives what the commands use of a frozen
dataclass (fields from the annotations with their defaults, keyword or positional
construction, `==` and `hash` by value, the same `repr`, assignment refused) from shared
functions, in microseconds a class.

Building an instance costs about 1 µs against 0.5 µs for a dataclass. The session caches the
commands of short packets, so only long packets (writes, qXfer) build one each time, next to
work on their payloads that costs a hundred times more.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_set = object.__setattr__


def _init(self, *args: Any, **kwargs: Any) -> None:
    names = self._record_fields
    if not kwargs and len(args) == len(names):
        for name, value in zip(names, args):
            _set(self, name, value)
        return
    if len(args) > len(names):
        raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, {len(args)} given")
    values = dict(zip(names, args))
    for name, value in kwargs.items():
        if name not in names:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}")
        if name in values:
            raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
        values[name] = value
    defaults = self._record_defaults
    for name in names:
        if name in values:
            _set(self, name, values[name])
        elif name in defaults:
            _set(self, name, defaults[name])
        else:
            raise TypeError(f"{type(self).__name__}() missing argument {name!r}")


def _values(self) -> tuple:
    return self._record_values(self)


def _eq(self, other: object) -> bool:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)
    return NotImplemented


def _hash(self) -> int:
    return hash(_values(self))


def _repr(self) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_fields)
    return f"{type(self).__qualname__}({fields})"


def _refuse_set(self, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(eq_default=True)
def record(cls: type[T]) -> type[T]:
    """Make `cls` a frozen value class of the fields its annotations name (see module doc)."""
    names: list[str] = list(getattr(cls, "_record_fields", ()))
    defaults: dict[str, Any] = dict(getattr(cls, "_record_defaults", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        if name not in names:
            names.append(name)
        if name in cls.__dict__:
            defaults[name] = cls.__dict__[name]
    cls._record_fields = tuple(names)
    cls._record_defaults = defaults
    # A tuple of every field's value in one C call (attrgetter returns a bare value for one).
    getter = attrgetter(*names) if names else (lambda self: ())
    cls._record_values = staticmethod(getter if len(names) != 1 else (lambda self: (getter(self),)))
    cls.__init__ = _init
    cls.__eq__ = _eq
    cls.__hash__ = _hash
    cls.__repr__ = _repr
    cls.__setattr__ = _refuse_set
    cls.__delattr__ = _refuse_delete
    cls.__match_args__ = tuple(names)
    return cls
