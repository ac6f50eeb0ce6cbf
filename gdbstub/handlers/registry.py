"""Which handler answers which command, and which qSupported features that makes true.

A handler module registers itself with `@handles(CommandType, features=...)`; the qSupported reply
is derived from what is registered (and from each feature's availability on this target), so it
can never advertise a packet nobody answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Feature:
    name: str  # as it appears in qSupported, e.g. 'qXfer:auxv:read+'
    available: Callable[[Any], bool] | None = None  # given the session


@dataclass(frozen=True)
class Registered:
    function: Handler
    is_async: bool


HANDLERS: dict[type, Registered] = {}
FEATURES: list[Feature] = []


def handles(*command_types: type, features: tuple[Feature | str, ...] = ()) -> Callable[[Handler], Handler]:
    def decorate(function: Handler) -> Handler:
        entry = Registered(function, inspect.iscoroutinefunction(function))
        for command_type in command_types:
            if command_type in HANDLERS:
                raise RuntimeError(f"two handlers for {command_type.__name__}")
            HANDLERS[command_type] = entry
        for feature in features:
            add_feature(feature)
        return function

    return decorate


def add_feature(feature: Feature | str) -> None:
    if isinstance(feature, str):
        feature = Feature(feature)
    if all(f.name != feature.name for f in FEATURES):
        FEATURES.append(feature)


def supported_features(session: Any) -> list[str]:
    return [f.name for f in FEATURES if f.available is None or f.available(session)]
