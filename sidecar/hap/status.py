"""HAP status codes (JSON ``status``) and pairing TLV error codes, as named by the HAP spec."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["HapError", "HapStatus", "TlvErrorCode"]


class HapStatus(IntEnum):
    """Per-characteristic and per-request status codes carried in JSON bodies."""

    SUCCESS = 0
    INSUFFICIENT_PRIVILEGES = -70401
    SERVICE_COMMUNICATION_FAILURE = -70402
    RESOURCE_BUSY = -70403
    READ_ONLY = -70404
    WRITE_ONLY = -70405
    NOTIFICATION_NOT_SUPPORTED = -70406
    OUT_OF_RESOURCE = -70407
    OPERATION_TIMED_OUT = -70408
    RESOURCE_DOES_NOT_EXIST = -70409
    INVALID_VALUE = -70410
    INSUFFICIENT_AUTHORIZATION = -70411
    NOT_ALLOWED_IN_CURRENT_STATE = -70412


class TlvErrorCode(IntEnum):
    """kTLVError_* values returned in the Error (7) item of pairing TLVs."""

    UNKNOWN = 1
    AUTHENTICATION = 2
    BACKOFF = 3
    MAX_PEERS = 4
    MAX_TRIES = 5
    UNAVAILABLE = 6
    BUSY = 7


class HapError(Exception):
    """Raised by characteristic handlers to reject a read or write with a HAP status."""

    def __init__(self, status: HapStatus, message: str = "") -> None:
        super().__init__(message or status.name)
        self.status = status
