"""What a HAP route answers: a :class:`Response` value, or a :class:`RequestError`.

Routes never build status bodies by hand. A request that cannot be served raises
:class:`RequestError` with its HTTP status and HAP status; the dispatcher turns it into the
``{"status": ...}`` body controllers expect. A successful route returns a :class:`Response`,
which may carry work for after its bytes are on their way (``after_send``: the mDNS record
flips to "paired" only once the M6 answer is sent) and, for pair-verify M4, the session keys
that switch the connection to encryption right after this response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .http import JSON_TYPE, json_body
from .pair_verify import VerifiedKeys
from .status import HapError, HapStatus

__all__ = ["RequestError", "Response"]


@dataclass(frozen=True)
class Response:
    """One HTTP response of the accessory server, and what follows from sending it."""

    status: int
    body: bytes = b""
    content_type: bytes = JSON_TYPE
    after_send: tuple[Callable[[], None], ...] = ()  # run once these bytes were written
    keys: VerifiedKeys | None = None  # pair-verify done: later bytes both ways are encrypted

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json_body(payload))

    @classmethod
    def hap_status(cls, status: int, hap_status: HapStatus) -> Response:
        """A body that is only a HAP status: ``{"status": -70410}``."""
        return cls(status, json_body({"status": int(hap_status)}))


class RequestError(HapError):
    """A request refused as a whole: answered with ``http_status`` and a HAP status body."""

    def __init__(self, http_status: int, status: HapStatus, message: str = "") -> None:
        super().__init__(status, message)
        self.http_status = http_status

    def response(self) -> Response:
        return Response.hap_status(self.http_status, self.status)
