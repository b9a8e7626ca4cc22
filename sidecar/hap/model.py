"""The accessory model: accessories, services and characteristics, with HAP value validation.

The model is plain data plus validation; it knows nothing about sockets. Layers above build
an :class:`Accessory`, attach handlers for reads and writes, and call
:meth:`Characteristic.set_value` when the world changes (motion, a camera state); the server
turns those changes into events for subscribed controllers.

Validation returns HAP statuses exactly as controllers expect them: a type or range error is
-70410, writing a read-only characteristic -70404, reading a write-only one -70405.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .status import HapError, HapStatus

__all__ = [
    "Accessory",
    "Characteristic",
    "Format",
    "Perm",
    "ReadContext",
    "Service",
    "SessionView",
    "WriteContext",
    "characteristic_json",
    "full_uuid",
    "perms",
    "services_json",
    "short_uuid",
]

APPLE_SUFFIX = "-0000-1000-8000-0026BB765291"


def full_uuid(value: str) -> str:
    """Normalise a short ("B0", "0x204") or full UUID to the full upper-case form."""
    text = value.upper()
    if text.startswith("0X"):
        text = text[2:]
    if len(text) <= 8 and all(c in "0123456789ABCDEF" for c in text):
        return text.rjust(8, "0") + APPLE_SUFFIX
    if len(text) == 36:
        return text
    raise ValueError(f"not a UUID: {value!r}")


def short_uuid(uuid: str) -> str:
    """Apple-defined types travel in short form ("B0"), as iOS and HAP-NodeJS send them."""
    if uuid.endswith(APPLE_SUFFIX):
        return uuid[:8].lstrip("0") or "0"
    return uuid


class Format(StrEnum):
    BOOL = "bool"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    TLV8 = "tlv8"
    DATA = "data"


_INT_RANGES: dict[Format, tuple[int, int]] = {
    Format.UINT8: (0, 0xFF),
    Format.UINT16: (0, 0xFFFF),
    Format.UINT32: (0, 0xFFFFFFFF),
    Format.UINT64: (0, 0xFFFFFFFFFFFFFFFF),
    Format.INT: (-(2**31), 2**31 - 1),
}


class Perm(StrEnum):
    READ = "pr"
    WRITE = "pw"
    EVENTS = "ev"
    ADDITIONAL_AUTH = "aa"
    TIMED_WRITE = "tw"
    HIDDEN = "hd"
    WRITE_RESPONSE = "wr"


def _invalid() -> HapError:
    """The error a value that does not fit its characteristic gets (made only when raised)."""
    return HapError(HapStatus.INVALID_VALUE)


class SessionView(Protocol):
    """What handlers may know of the controller session behind a request."""

    @property
    def controller_id(self) -> bytes: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def shared_secret(self) -> bytes: ...
    @property
    def session_id(self) -> int: ...
    def add_close_callback(self, callback: Callable[[], None]) -> Callable[[], None]: ...


@dataclass(frozen=True)
class WriteContext:
    session: SessionView
    timed: bool
    write_response: bool


@dataclass(frozen=True)
class ReadContext:
    session: SessionView


WriteHandler = Callable[[Any, WriteContext], Any]
ReadHandler = Callable[[ReadContext], Any]
Listener = Callable[["Characteristic", Any, "SessionView | None"], None]


@dataclass(eq=False)
class Characteristic:
    """One characteristic. ``value`` holds the current value in its Python form.

    ``on_write(value, ctx)`` may raise :class:`HapError`, and for write-response
    characteristics returns the value to answer with. ``on_read(ctx)`` supplies a value
    computed at read time (it may raise HapError too). ``admin_write`` refuses writes from
    non-admin controllers with -70401. ``immediate`` marks events that must never be delayed
    (ProgrammableSwitchEvent); ``always_notify`` sends an event even when the value repeats.
    """

    type: str
    format: Format
    perms: frozenset[Perm]
    value: Any = None
    min_value: float | None = None
    max_value: float | None = None
    min_step: float | None = None
    max_len: int | None = None
    max_data_len: int | None = None
    valid_values: tuple[int, ...] | None = None
    unit: str | None = None
    description: str | None = None
    admin_write: bool = False
    immediate: bool = False
    always_notify: bool = False
    on_write: WriteHandler | None = None
    on_read: ReadHandler | None = None
    iid: int = 0
    _listeners: list[Listener] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.type = full_uuid(self.type)
        self.perms = frozenset(self.perms)
        if self.value is None:
            self.value = self.default_value()
        else:
            self.value = self.validate(self.value)

    # -- values -------------------------------------------------------------------------------
    def default_value(self) -> Any:
        if self.format is Format.BOOL:
            return False
        if self.format in _INT_RANGES:
            if self.valid_values:
                return self.valid_values[0]
            return int(self.min_value) if self.min_value is not None else 0
        if self.format is Format.FLOAT:
            return float(self.min_value) if self.min_value is not None else 0.0
        if self.format in (Format.TLV8, Format.DATA):
            return b""
        return ""

    def validate(self, value: Any) -> Any:
        """Return the value in canonical Python form, or raise HapError(-70410)."""
        fmt = self.format
        if fmt is Format.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise _invalid()
        if fmt in _INT_RANGES:
            if isinstance(value, bool):
                value = int(value)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise _invalid()
            low, high = _INT_RANGES[fmt]
            if not low <= value <= high:
                raise _invalid()
            self._check_range(value)
            if self.valid_values is not None and value not in self.valid_values:
                raise _invalid()
            return value
        if fmt is Format.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid()
            number = float(value)
            if not math.isfinite(number):
                raise _invalid()
            self._check_range(number)
            return number
        if fmt is Format.STRING:
            if not isinstance(value, str):
                raise _invalid()
            if len(value) > (self.max_len if self.max_len is not None else 64):
                raise _invalid()
            return value
        # tlv8 and data travel as base64 in JSON; Python callers may pass bytes directly.
        if isinstance(value, bytes | bytearray):
            raw = bytes(value)
        elif isinstance(value, str):
            try:
                raw = base64.b64decode(value.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise _invalid() from None
        else:
            raise _invalid()
        if self.max_data_len is not None and len(raw) > self.max_data_len:
            raise _invalid()
        return raw

    def _check_range(self, number: float) -> None:
        if self.min_value is not None and number < self.min_value:
            raise _invalid()
        if self.max_value is not None and number > self.max_value:
            raise _invalid()

    def to_json_value(self, value: Any) -> Any:
        if self.format is Format.TLV8 or self.format is Format.DATA:
            return base64.b64encode(value).decode("ascii")
        return value

    def set_value(self, value: Any, *, origin: SessionView | None = None) -> bool:
        """Change the value; notify listeners (the server's event fan-out) if it changed.

        Returns whether anything was notified. ``origin`` is the writing session, which the
        server excludes from the fan-out.
        """
        value = self.validate(value)
        if value == self.value and not self.always_notify:
            return False
        self.value = value
        for listener in list(self._listeners):
            listener(self, value, origin)
        return True

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- description --------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format.value}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.min_value is not None:
            out["minValue"] = self.min_value
        if self.max_value is not None:
            out["maxValue"] = self.max_value
        if self.min_step is not None:
            out["minStep"] = self.min_step
        if self.max_len is not None:
            out["maxLen"] = self.max_len
        if self.max_data_len is not None:
            out["maxDataLen"] = self.max_data_len
        if self.valid_values is not None:
            out["valid-values"] = list(self.valid_values)
        return out

    def perms_list(self) -> list[str]:
        order = [Perm.READ, Perm.WRITE, Perm.EVENTS, Perm.ADDITIONAL_AUTH, Perm.TIMED_WRITE,
                 Perm.HIDDEN, Perm.WRITE_RESPONSE]
        return [p.value for p in order if p in self.perms]

    def shape(self) -> list[Any]:
        """Everything that defines the database's shape, and no values (c# must not churn)."""
        return [self.iid, self.type, self.perms_list(), sorted(self.meta().items()), self.description]


@dataclass(eq=False)
class Service:
    """A service. ``key`` distinguishes several services of one type (stable iids need it)."""

    type: str
    characteristics: list[Characteristic] = field(default_factory=list)
    key: str = ""
    primary: bool = False
    hidden: bool = False
    linked: list[Service] = field(default_factory=list)
    iid: int = 0

    def __post_init__(self) -> None:
        self.type = full_uuid(self.type)

    def add(self, *chars: Characteristic) -> Service:
        self.characteristics.extend(chars)
        return self

    def get(self, char_type: str) -> Characteristic:
        wanted = full_uuid(char_type)
        for char in self.characteristics:
            if char.type == wanted:
                return char
        raise KeyError(char_type)

    def link(self, *others: Service) -> Service:
        self.linked.extend(others)
        return self


@dataclass(eq=False)
class Accessory:
    """A standalone accessory (aid 1 unless told otherwise) and its services."""

    services: list[Service] = field(default_factory=list)
    aid: int = 1
    category: int = 1

    def add(self, *services: Service) -> Accessory:
        self.services.extend(services)
        return self

    def service(self, service_type: str, key: str = "") -> Service:
        wanted = full_uuid(service_type)
        for svc in self.services:
            if svc.type == wanted and svc.key == key:
                return svc
        raise KeyError(service_type)

    def characteristics(self) -> Iterator[Characteristic]:
        for svc in self.services:
            yield from svc.characteristics

    def assign_iids(self, iids: dict[str, int]) -> bool:
        """Give every service and characteristic a stable iid from ``iids`` (updated in place).

        Paths are ``<service type>/<service key>`` and ``.../<characteristic type>``, so an iid
        never moves when services are added or reordered. Returns whether ``iids`` changed.
        AccessoryInformation gets iid 1 on a fresh map, as controllers conventionally expect.
        """
        changed = False
        used = set(iids.values())
        next_iid = max(used, default=0) + 1

        def take(path: str) -> int:
            nonlocal next_iid, changed
            if path in iids:
                return iids[path]
            iid = next_iid
            next_iid += 1
            iids[path] = iid
            used.add(iid)
            changed = True
            return iid

        info = full_uuid("3E")
        ordered = sorted(self.services, key=lambda s: s.type != info)
        seen: set[str] = set()
        for svc in ordered:
            spath = f"{short_uuid(svc.type)}/{svc.key}"
            if spath in seen:
                raise ValueError(f"two services with path {spath}: give them distinct keys")
            seen.add(spath)
            svc.iid = take(spath)
            for char in svc.characteristics:
                char.iid = take(f"{spath}/{short_uuid(char.type)}")
        return changed

    def shape_hash(self) -> str:
        shape = [
            [svc.iid, svc.type, svc.primary, svc.hidden, sorted(s.iid for s in svc.linked),
             [c.shape() for c in svc.characteristics]]
            for svc in self.services
        ]
        return hashlib.sha256(json.dumps([self.aid, shape]).encode()).hexdigest()


def characteristic_json(char: Characteristic, value: Any | None, include_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "iid": char.iid,
        "type": short_uuid(char.type),
        "perms": char.perms_list(),
    }
    out.update(char.meta())
    if include_value:
        out["value"] = char.to_json_value(value)
    if char.description is not None:
        out["description"] = char.description
    return out


def services_json(
    accessory: Accessory, read: Callable[[Characteristic], tuple[Any, bool]]
) -> list[dict[str, Any]]:
    """Serialise the services; ``read`` returns (value, readable) for each characteristic."""
    result: list[dict[str, Any]] = []
    for svc in accessory.services:
        chars = []
        for char in svc.characteristics:
            value, ok = read(char)
            chars.append(characteristic_json(char, value, ok))
        entry: dict[str, Any] = {
            "iid": svc.iid,
            "type": short_uuid(svc.type),
            "characteristics": chars,
        }
        if svc.primary:
            entry["primary"] = True
        if svc.hidden:
            entry["hidden"] = True
        if svc.linked:
            entry["linked"] = [s.iid for s in svc.linked]
        result.append(entry)
    return result


def perms(*names: str) -> frozenset[Perm]:
    """``perms("pr", "ev")`` reads better than a set of enum members in service definitions."""
    return frozenset(Perm(n) for n in names)
