"""A type-tagged view of OPACK values, so comparisons never confuse True with 1 or 1 with 1.0,
and so Python and node can exchange values as JSON (see node/hn_codec.js)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from sidecar.hds.opack import Date


def typed(value: Any) -> dict[str, Any]:
    if value is None:
        return {"t": "null"}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int):
        return {"t": "int", "v": value}
    if isinstance(value, float):
        return {"t": "float", "v": value if math.isfinite(value) else str(value)}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"t": "data", "hex": bytes(value).hex()}
    if isinstance(value, uuid.UUID):
        return {"t": "uuid", "v": str(value)}
    if isinstance(value, Date):
        return {"t": "date", "v": value.seconds}
    if isinstance(value, list | tuple):
        return {"t": "array", "v": [typed(v) for v in value]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[typed(k), typed(v)] for k, v in value.items()]}
    raise TypeError(type(value))


def same(a: Any, b: Any) -> bool:
    """Strict equality: same types all the way down (NaN equals NaN)."""
    return typed(a) == typed(b) or _nan_equal(typed(a), typed(b))


def _nan_equal(a: Any, b: Any) -> bool:
    return str(a) == str(b)
