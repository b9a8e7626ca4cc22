"""Drive aiohomekit's controller-side pairing generators against our sans-IO objects (no sockets)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from typing import Any

from aiohomekit.protocol import get_session_keys, perform_pair_setup_part1, perform_pair_setup_part2
from aiohomekit.protocol.tlv import TLV


def drive(gen: Generator[Any, Any, Any], handle: Callable[[bytes], bytes]) -> Any:
    """Run a generator: each yielded request goes to ``handle``; returns the StopIteration value."""
    request, expected = gen.send(None)
    while True:
        response = handle(bytes(TLV.encode_list(request)))
        try:
            request, expected = gen.send(TLV.decode_bytes(response, expected=expected))
        except StopIteration as stop:
            return stop.value


def pair(handle: Callable[[bytes], bytes], pin: str, *, with_auth: bool = False) -> dict[str, Any]:
    """Full pair-setup through ``handle``; returns aiohomekit's pairing data dict."""
    salt, public = drive(perform_pair_setup_part1(with_auth=with_auth), handle)
    data: dict[str, Any] = drive(
        perform_pair_setup_part2(pin, str(uuid.uuid4()), salt, public), handle
    )
    return data


def verify(handle: Callable[[bytes], bytes], pairing_data: dict[str, Any]) -> Any:
    """Pair-verify; returns aiohomekit's ``derive(salt, info)`` function."""
    result = drive(get_session_keys(pairing_data), handle)
    return result[1]
