"""TLV item types and methods used by /pair-setup, /pair-verify and /pairings."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Method", "PairingFlag", "T"]


class T(IntEnum):
    """Pairing TLV types."""

    METHOD = 0x00
    IDENTIFIER = 0x01
    SALT = 0x02
    PUBLIC_KEY = 0x03
    PROOF = 0x04
    ENCRYPTED_DATA = 0x05
    STATE = 0x06
    ERROR = 0x07
    RETRY_DELAY = 0x08
    CERTIFICATE = 0x09
    SIGNATURE = 0x0A
    PERMISSIONS = 0x0B
    FRAGMENT_DATA = 0x0C
    FRAGMENT_LAST = 0x0D
    FLAGS = 0x13
    SEPARATOR = 0xFF


class Method(IntEnum):
    PAIR_SETUP = 0
    PAIR_SETUP_WITH_AUTH = 1
    PAIR_VERIFY = 2
    ADD_PAIRING = 3
    REMOVE_PAIRING = 4
    LIST_PAIRINGS = 5


class PairingFlag(IntEnum):
    TRANSIENT = 0x10
    SPLIT = 0x01000000
