"""An accessory's persistent identity and pairings, written atomically with mode 0600.

One JSON file per accessory holds everything that must survive a restart: the pairing id
(a random MAC-like id), the Ed25519 long-term key, the setup code and setup id, the pairings
with their admin flags, the failed pair-setup counter (so MaxTries cannot be reset by a
restart), the iid map (so iids stay stable), the config number and the database hash, and an
``app`` namespace for the layers above (camera modes, selected recording configuration).

Nothing in here is ever logged: ``__repr__`` is redacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..atomic_file import atomic_write

__all__ = [
    "MAX_PAIRINGS",
    "AccessoryState",
    "DamagedStateError",
    "Pairing",
    "StateError",
    "atomic_write",
    "generate_setup_code",
    "generate_setup_id",
    "is_valid_setup_code",
    "move_aside",
    "remove_stale_temp_files",
]

MAX_PAIRINGS = 32  # HAP requires at least 16
FORMAT_VERSION = 1
_TRIVIAL_CODES = {f"{d}{d}{d}-{d}{d}-{d}{d}{d}" for d in "0123456789"} | {"123-45-678", "876-54-321"}
_SETUP_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class StateError(Exception):
    """The state file exists but cannot be used (corrupt JSON, wrong types, bad key)."""


class DamagedStateError(StateError):
    """The file was read but its content is not a state: the user may choose to start afresh.

    Distinct from a file that cannot be read at all (permissions, I/O): that one is never reset.
    """


def is_valid_setup_code(code: str) -> bool:
    """Setup codes look like 123-45-678 and must not be trivial (HAP forbids those)."""
    if len(code) != 10 or code[3] != "-" or code[6] != "-":
        return False
    digits = code.replace("-", "")
    return digits.isdigit() and len(digits) == 8 and code not in _TRIVIAL_CODES


def generate_setup_code() -> str:
    while True:
        digits = f"{secrets.randbelow(10**8):08d}"
        code = f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
        if is_valid_setup_code(code):
            return code


def generate_setup_id() -> str:
    return "".join(secrets.choice(_SETUP_ID_ALPHABET) for _ in range(4))


def _generate_device_id() -> str:
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered, unicast: never a real vendor MAC
    return ":".join(f"{b:02X}" for b in raw)


@dataclass
class Pairing:
    """A paired controller: its identifier bytes exactly as it sent them, its LTPK, admin flag."""

    identifier: bytes
    public_key: bytes
    admin: bool

    def __repr__(self) -> str:
        return f"Pairing(identifier={self.identifier!r}, admin={self.admin})"


@dataclass
class AccessoryState:
    device_id: str
    signing_seed: bytes
    setup_code: str
    setup_id: str
    pairings: dict[bytes, Pairing] = field(default_factory=dict)
    failed_attempts: int = 0
    config_number: int = 1
    db_hash: str = ""
    iids: dict[str, int] = field(default_factory=dict)
    app: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"AccessoryState(device_id={self.device_id}, pairings={len(self.pairings)}, <secrets redacted>)"

    @classmethod
    def create(cls, setup_code: str | None = None, setup_id: str | None = None) -> AccessoryState:
        if setup_code is not None and not is_valid_setup_code(setup_code):
            raise StateError("setup code must look like 123-45-678 and not be trivial")
        return cls(
            device_id=_generate_device_id(),
            signing_seed=secrets.token_bytes(32),
            setup_code=setup_code or generate_setup_code(),
            setup_id=setup_id or generate_setup_id(),
        )

    # -- keys (parsed once: every pair-verify signs with them) ---------------------------------
    @cached_property
    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed)

    @cached_property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def paired(self) -> bool:
        return bool(self.pairings)

    def admin_flags(self) -> dict[bytes, bool]:
        """Each paired controller's identifier and whether it is an admin (to compare before/after)."""
        return {ident: p.admin for ident, p in self.pairings.items()}

    def has_admin(self) -> bool:
        return any(p.admin for p in self.pairings.values())

    # -- (de)serialisation --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "device_id": self.device_id,
            "signing_seed": self.signing_seed.hex(),
            "setup_code": self.setup_code,
            "setup_id": self.setup_id,
            "pairings": [
                {"identifier": p.identifier.hex(), "public_key": p.public_key.hex(), "admin": p.admin}
                for p in self.pairings.values()
            ],
            "failed_attempts": self.failed_attempts,
            "config_number": self.config_number,
            "db_hash": self.db_hash,
            "iids": self.iids,
            "app": self.app,
        }

    @classmethod
    def from_json(cls, data: Any) -> AccessoryState:
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
                raise DamagedStateError("unknown state file format")
            pairings: dict[bytes, Pairing] = {}
            for item in data["pairings"]:
                ident = bytes.fromhex(item["identifier"])
                pairings[ident] = Pairing(ident, bytes.fromhex(item["public_key"]), bool(item["admin"]))
            state = cls(
                device_id=str(data["device_id"]),
                signing_seed=bytes.fromhex(data["signing_seed"]),
                setup_code=str(data["setup_code"]),
                setup_id=str(data["setup_id"]),
                pairings=pairings,
                failed_attempts=int(data["failed_attempts"]),
                config_number=int(data["config_number"]),
                db_hash=str(data["db_hash"]),
                iids={str(k): int(v) for k, v in dict(data["iids"]).items()},
                app=dict(data.get("app", {})),
            )
        except StateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DamagedStateError(f"state file is damaged: {type(exc).__name__}") from None
        if len(state.signing_seed) != 32 or not is_valid_setup_code(state.setup_code):
            raise DamagedStateError("state file holds an invalid key or setup code")
        return state

    @classmethod
    def load(cls, path: Path) -> AccessoryState:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise DamagedStateError(f"{path} is not valid JSON") from None
        try:
            return cls.from_json(data)
        except DamagedStateError as exc:
            raise DamagedStateError(f"{path}: {exc}") from None

    @classmethod
    def load_or_create(
        cls, path: Path, setup_code: str | None = None, setup_id: str | None = None,
        save: Callable[[AccessoryState], None] | None = None,
    ) -> AccessoryState:
        """Load the state, or create and save a fresh identity when there is no file yet.

        ``save`` writes a state that had to change (default: :meth:`save` to ``path`` at once; a
        server on an event loop passes its write-behind writer).

        A damaged file is an error, never silently replaced: replacing it would orphan the
        user's pairings without telling them (see :func:`move_aside` for the user's way out).
        Temporary files left by a write that a crash interrupted are removed first.
        """
        remove_stale_temp_files(path)
        if path.exists():
            state = cls.load(path)
            if setup_code is not None and setup_code != state.setup_code and not state.paired:
                if not is_valid_setup_code(setup_code):
                    raise StateError("setup code must look like 123-45-678 and not be trivial")
                state.setup_code = setup_code
                (save or (lambda s: s.save(path)))(state)
            return state
        state = cls.create(setup_code, setup_id)
        (save or (lambda s: s.save(path)))(state)
        return state

    def to_bytes(self) -> bytes:
        """The state file's content."""
        return json.dumps(self.to_json(), indent=1, sort_keys=True).encode()

    def save(self, path: Path) -> None:
        atomic_write(path, self.to_bytes())


def _temp_pattern(path: Path) -> re.Pattern[str]:
    # tempfile.mkstemp(prefix=".<name>.") appends 8 characters from [a-z0-9_].
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete the ``.<name>.<random suffix>`` files a killed write left next to ``path``; return them.

    They are full copies of the state (signing seed included), so they must not pile up.
    Only this process writes this accessory's state, so at start-up none is in flight.
    """
    pattern = _temp_pattern(path)
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for candidate in path.parent.iterdir():
            if pattern.fullmatch(candidate.name):
                with contextlib.suppress(FileNotFoundError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def move_aside(path: Path, now: float | None = None) -> Path:
    """Rename a damaged state file to ``<name>.corrupt-<UTC time>`` (never over another file)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while True:
        try:
            os.link(path, target)  # fails if target exists: nothing is ever overwritten
        except FileExistsError:
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
            continue
        except OSError:  # a file system without hard links
            if target.exists():
                n += 1
                target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
                continue
            os.rename(path, target)
            return target
        break
    os.unlink(path)
    return target
