"""Config to runtime in one place: a validated config model becomes the frozen value it feeds.

The runtime values (``CameraSpec``, ``DetectorParams``, an MQTT ``Binding``, ``BrokerSettings``)
are plain dataclasses, so ``camera/`` and ``triggers/`` never depend on pydantic; tests and
benchmarks build them directly. :func:`runtime_value` fills each runtime field from the config
field of the same name, so a new option is declared where it is read and where it is configured,
and nothing copies it by hand in between. Fields whose value is worked out (a snapshot URL from a
preset, the detector's frames from ``motion``) are passed as keywords; config fields not copied
by name (derived into another field, or read by something else) must be named in ``uncopied``,
so a new config field that nothing reads fails the first test that builds a camera instead of
being dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["runtime_value"]

T = TypeVar("T")


def runtime_value(cls: type[T], model: BaseModel, *, uncopied: Iterable[str] = (), **derived: Any) -> T:
    """``cls`` (a dataclass) built from ``model``: each field from ``derived`` if given there, else
    from the model's field of the same name (a list becomes a tuple: runtime values are frozen),
    else the dataclass default. Raises ``TypeError`` when a model field is neither a field of
    ``cls`` nor named in ``derived`` or ``uncopied``: a setting nothing would read."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(derived) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    unread = set(type(model).model_fields) - names - set(derived) - set(uncopied)
    if unread:
        raise TypeError(f"{type(model).__name__}.{', '.join(sorted(unread))}: no field of {cls.__name__} takes it; "
                        "add one, or derive it and name it in uncopied=")
    values: dict[str, Any] = {}
    for name in names:
        if name in derived:
            values[name] = derived[name]
        elif name in type(model).model_fields:
            value = getattr(model, name)
            values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
