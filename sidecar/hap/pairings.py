"""/pairings (sans-IO): add, remove and list controllers; admin only.

Identifiers are kept as the exact bytes the controller sent and echoed back verbatim (iOS 16
unpairs when they are not). Removing the last admin wipes every pairing and returns the
accessory to its factory state. The caller closes the sessions of removed controllers after the
response has been sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import tlv8
from .pairing_tlv import Method, T
from .state import MAX_PAIRINGS, AccessoryState, Pairing
from .status import TlvErrorCode

__all__ = ["PairingsResult", "handle_pairings"]

PERMISSION_ADMIN = 0x01


@dataclass(frozen=True)
class PairingsResult:
    body: bytes
    removed: frozenset[bytes] = field(default_factory=frozenset)
    state_dirty: bool = False
    factory_reset: bool = False


def _error(code: TlvErrorCode) -> PairingsResult:
    return PairingsResult(tlv8.encode([(T.STATE, 2), (T.ERROR, int(code))]))


def handle_pairings(state: AccessoryState, caller: bytes, body: bytes) -> PairingsResult:
    try:
        items = tlv8.decode_dict(body)
    except tlv8.TLVError:
        return _error(TlvErrorCode.UNKNOWN)
    if items.get(T.STATE) != b"\x01":
        return _error(TlvErrorCode.UNKNOWN)
    me = state.pairings.get(caller)
    if me is None or not me.admin:
        return _error(TlvErrorCode.AUTHENTICATION)
    method = items.get(T.METHOD)
    if method == bytes([Method.ADD_PAIRING]):
        return _add(state, items)
    if method == bytes([Method.REMOVE_PAIRING]):
        return _remove(state, items)
    if method == bytes([Method.LIST_PAIRINGS]):
        return _list(state)
    return _error(TlvErrorCode.UNKNOWN)


def _add(state: AccessoryState, items: dict[int, bytes]) -> PairingsResult:
    identifier = items.get(T.IDENTIFIER)
    public_key = items.get(T.PUBLIC_KEY)
    permissions = items.get(T.PERMISSIONS)
    if not identifier or public_key is None or len(public_key) != 32 or permissions is None \
            or len(permissions) != 1 or len(identifier) > 64:
        return _error(TlvErrorCode.UNKNOWN)
    admin = bool(permissions[0] & PERMISSION_ADMIN)
    existing = state.pairings.get(identifier)
    if existing is not None:
        if existing.public_key != public_key:
            return _error(TlvErrorCode.UNKNOWN)
        existing.admin = admin
    else:
        if len(state.pairings) >= MAX_PAIRINGS:
            return _error(TlvErrorCode.MAX_PEERS)
        state.pairings[identifier] = Pairing(identifier, public_key, admin)
    return PairingsResult(tlv8.encode([(T.STATE, 2)]), state_dirty=True)


def _remove(state: AccessoryState, items: dict[int, bytes]) -> PairingsResult:
    identifier = items.get(T.IDENTIFIER)
    if not identifier:
        return _error(TlvErrorCode.UNKNOWN)
    ok = tlv8.encode([(T.STATE, 2)])
    if identifier not in state.pairings:
        return PairingsResult(ok)
    del state.pairings[identifier]
    removed = {identifier}
    factory_reset = False
    if not state.has_admin():
        removed |= set(state.pairings)
        state.pairings.clear()
        factory_reset = True
    return PairingsResult(ok, frozenset(removed), state_dirty=True, factory_reset=factory_reset)


def _list(state: AccessoryState) -> PairingsResult:
    parts = [tlv8.item(T.STATE, 2)]
    for index, pairing in enumerate(state.pairings.values()):
        if index:
            parts.append(tlv8.item(T.SEPARATOR, b""))
        parts.append(tlv8.item(T.IDENTIFIER, pairing.identifier))
        parts.append(tlv8.item(T.PUBLIC_KEY, pairing.public_key))
        parts.append(tlv8.item(T.PERMISSIONS, PERMISSION_ADMIN if pairing.admin else 0))
    return PairingsResult(b"".join(parts))
