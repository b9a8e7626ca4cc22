"""The ``dataSend`` protocol (sans-IO): open-request checks and the chunking of a recording stream.

:func:`decide_open` answers a hub's ``open`` exactly in the order of docs/protocol.md §dataSend open;
:class:`StreamRegistry` (one per camera) enforces "one recording stream at a time" across every
HDS connection of that camera, including a second ``open`` on the connection that already
streams (HN stays silent there; we answer BUSY). :class:`DataSendStream` turns "init segment"
and "fragment" inputs into the bodies of ``data`` events (docs/protocol.md §dataSend data) and tracks how the stream
ended. Nothing here knows about MP4, sockets or time beyond the ``now`` it is given.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from .errors import StreamClosedError
from .messages import HDSStatus
from .opack import Pieces, Value

__all__ = [
    "END_OF_STREAM_TIMEOUT",
    "MAX_CHUNK",
    "PROTOCOL",
    "CloseReason",
    "DataSendStream",
    "OpenDecision",
    "OpenGate",
    "Segment",
    "StreamRegistry",
    "decide_open",
    "decide_snapshot_open",
    "reason_code",
]

Segment = bytes | bytearray | memoryview | tuple[bytes | memoryview, ...]
"""One init segment or fragment: a buffer, or pieces sent as their concatenation (never joined)."""

PROTOCOL: Final = "dataSend"
MAX_CHUNK: Final = 262_144
"""Chunk size real cameras and HN use (256 KiB), well under the 1 MiB frame limit."""
END_OF_STREAM_TIMEOUT: Final = 12.0
"""After ``endOfStream``, close with CANCELLED if the hub neither acks nor closes (docs/protocol.md §Recording flow)."""
TARGET: Final = "controller"
STREAM_TYPE: Final = "ipcamera.recording"
SNAPSHOT_TYPE: Final = "ipcamera.snapshot"
"""A one-payload stream some hubs open for a still picture (docs/hds.md §Snapshot streams)."""


class CloseReason(enum.IntEnum):
    """dataSend reason codes (HDSProtocolSpecificErrorReason, docs/protocol.md §dataSend reasons)."""

    NORMAL = 0
    NOT_ALLOWED = 1
    BUSY = 2
    CANCELLED = 3
    UNSUPPORTED = 4
    UNEXPECTED_FAILURE = 5
    TIMEOUT = 6
    BAD_DATA = 7
    PROTOCOL_ERROR = 8
    INVALID_CONFIGURATION = 9


def reason_code(raw: object) -> CloseReason | int | None:
    """A reason from the wire: the enum when known, the bare int otherwise, None if absent."""
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    try:
        return CloseReason(raw)
    except ValueError:
        return raw


class OpenGate(Protocol):
    """What the camera layer tells dataSend before a recording stream may start."""

    def recording_active(self) -> bool:
        """CameraRecordingManagement ``Active`` is 1."""
        ...

    def camera_active(self) -> bool:
        """``HomeKitCameraActive`` is 1."""
        ...

    def has_selected_configuration(self) -> bool:
        """The hub has written a SelectedCameraRecordingConfiguration."""
        ...


@dataclass(frozen=True, slots=True)
class OpenDecision:
    """The two statuses of an ``open`` response: header status and message ``status``."""

    header_status: HDSStatus
    status: CloseReason
    stream_id: int | None = None

    @property
    def accepted(self) -> bool:
        return self.header_status is HDSStatus.SUCCESS

    def body(self) -> dict[str, Value]:
        return {"status": int(self.status)}


def _reject(reason: CloseReason) -> OpenDecision:
    return OpenDecision(HDSStatus.PROTOCOL_SPECIFIC_ERROR, reason)


def decide_open(body: object, gate: OpenGate, stream_running: bool) -> OpenDecision:
    """Check an ``open`` request in HN's order (docs/protocol.md §dataSend open).

    Malformed requests count as a mismatch.
    """
    if not isinstance(body, dict):
        return _reject(CloseReason.UNEXPECTED_FAILURE)
    stream_id = body.get("streamId")
    if (
        body.get("target") != TARGET
        or body.get("type") != STREAM_TYPE
        or not isinstance(stream_id, int)
        or isinstance(stream_id, bool)
    ):
        return _reject(CloseReason.UNEXPECTED_FAILURE)
    if not gate.recording_active() or not gate.camera_active():
        return _reject(CloseReason.NOT_ALLOWED)
    if stream_running:
        return _reject(CloseReason.BUSY)
    if not gate.has_selected_configuration():
        return _reject(CloseReason.INVALID_CONFIGURATION)
    return OpenDecision(HDSStatus.SUCCESS, CloseReason.NORMAL, stream_id)


def decide_snapshot_open(body: object, camera_active: bool) -> OpenDecision:
    """Check an ``open`` of a snapshot stream: well formed, and the camera switched on."""
    if not isinstance(body, dict):
        return _reject(CloseReason.UNEXPECTED_FAILURE)
    stream_id = body.get("streamId")
    if (
        body.get("target") != TARGET
        or body.get("type") != SNAPSHOT_TYPE
        or not isinstance(stream_id, int)
        or isinstance(stream_id, bool)
    ):
        return _reject(CloseReason.UNEXPECTED_FAILURE)
    if not camera_active:
        return _reject(CloseReason.NOT_ALLOWED)
    return OpenDecision(HDSStatus.SUCCESS, CloseReason.NORMAL, stream_id)


StreamState = Literal["open", "ended", "closed"]
ClosedBy = Literal["hub", "accessory", "connection", "ack"]


class DataSendStream:
    """One recording stream: numbering and chunking of init segment and fragments.

    ``init_segment`` must come first (dataSequenceNumber 1), then ``fragment`` for each fMP4
    fragment (+1 each). Each input becomes one or more ``data`` event bodies of at most
    ``max_chunk`` bytes; the chunk data is a memoryview into the caller's buffer, not a copy.
    """

    def __init__(self, stream_id: int, *, max_chunk: int = MAX_CHUNK) -> None:
        if max_chunk < 1:
            raise ValueError("max_chunk must be positive")
        self.stream_id = stream_id
        self.max_chunk = max_chunk
        self.state: StreamState = "open"
        self.close_reason: CloseReason | int | None = None
        self.closed_by: ClosedBy | None = None
        self.ended_at: float | None = None
        self.sequence_number = 0
        """dataSequenceNumber of the last input (0 = nothing sent yet)."""
        self.bytes_sent = 0

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def init_segment(self, data: Segment) -> Iterator[dict[str, Value]]:
        """Data event bodies for the initialization segment (ftyp + moov)."""
        if self.state != "open":
            raise StreamClosedError(f"stream {self.stream_id} is {self.state}")
        if self.sequence_number != 0:
            raise ValueError("init segment already sent")
        return self._chunks(data, "mediaInitialization", end_of_stream=False, now=0.0)

    def payload(self, data: Segment, data_type: str, *, now: float = 0.0) -> Iterator[dict[str, Value]]:
        """Data event bodies for the one payload of a snapshot stream (the caller's bytes and
        ``data_type`` label, opaque here), ending the stream."""
        if self.sequence_number != 0:
            raise ValueError("a snapshot stream carries one payload")
        return self._chunks(data, data_type, end_of_stream=True, now=now)

    def fragment(
        self, data: Segment, *, end_of_stream: bool = False, now: float = 0.0
    ) -> Iterator[dict[str, Value]]:
        """Data event bodies for one fragment; ``end_of_stream`` marks the final one."""
        if self.sequence_number == 0 and not self.closed:
            raise ValueError("send the init segment first")
        return self._chunks(data, "mediaFragment", end_of_stream=end_of_stream, now=now)

    def _chunks(
        self, data: Segment, data_type: str, *, end_of_stream: bool, now: float
    ) -> Iterator[dict[str, Value]]:
        if self.state != "open":
            raise StreamClosedError(f"stream {self.stream_id} is {self.state}")
        views = [_bytes_view(piece) for piece in data] if isinstance(data, tuple) else [_bytes_view(data)]
        views = [v for v in views if v.nbytes]
        total = sum(v.nbytes for v in views)
        if total == 0:
            raise ValueError("empty segment (HN would send nothing and lose endOfStream)")
        self.sequence_number += 1
        if end_of_stream:
            self.state = "ended"
            self.ended_at = now
        return self._generate(views, total, data_type, self.sequence_number, end_of_stream)

    def _generate(
        self, views: list[memoryview], total: int, data_type: str, sequence: int, end_of_stream: bool
    ) -> Iterator[dict[str, Value]]:
        chunk_number = 1
        for offset in range(0, total, self.max_chunk):
            piece = _slice(views, offset, min(total, offset + self.max_chunk))
            last = offset + self.max_chunk >= total
            metadata: dict[str, Value] = {
                "dataType": data_type,
                "dataSequenceNumber": sequence,
                "dataChunkSequenceNumber": chunk_number,
                "isLastDataChunk": last,
            }
            if chunk_number == 1:
                metadata["dataTotalSize"] = total
            body: dict[str, Value] = {
                "streamId": self.stream_id,
                # A memoryview, not bytes: the encoder copies it once, into the frame plaintext.
                "packets": [{"data": piece, "metadata": metadata}],  # type: ignore[dict-item]
            }
            if last:
                body["endOfStream"] = end_of_stream
            self.bytes_sent += piece.nbytes
            chunk_number += 1
            yield body

    def close_body(self, reason: CloseReason) -> dict[str, Value]:
        """Body of the accessory's ``close`` event; marks the stream closed."""
        self.mark_closed("accessory", reason)
        return {"streamId": self.stream_id, "reason": int(reason)}

    def mark_closed(self, by: ClosedBy, reason: CloseReason | int | None) -> bool:
        """Record how the stream ended; False if it had already ended (close is idempotent)."""
        if self.state == "closed":
            return False
        self.state = "closed"
        self.closed_by = by
        self.close_reason = reason
        return True

    def end_of_stream_deadline(self, timeout: float = END_OF_STREAM_TIMEOUT) -> float | None:
        """When to give up waiting for the hub's ack/close after ``endOfStream``."""
        if self.state == "ended" and self.ended_at is not None:
            return self.ended_at + timeout
        return None


def _bytes_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _slice(views: list[memoryview], start: int, end: int) -> memoryview | Pieces:
    """``start:end`` of the concatenation of ``views``: one view when it lies in one piece (the
    usual case), else the pieces it spans (still views, no copy)."""
    out: list[memoryview] = []
    base = 0
    for view in views:
        size = view.nbytes
        if base + size > start and base < end:
            out.append(view[max(0, start - base) : min(size, end - base)])
        base += size
        if base >= end:
            break
    return out[0] if len(out) == 1 else Pieces(out)


class StreamRegistry:
    """Per camera: the single running recording stream, shared by all its HDS connections."""

    def __init__(self, gate: OpenGate, *, max_chunk: int = MAX_CHUNK) -> None:
        self.gate = gate
        self.max_chunk = max_chunk
        self.active: DataSendStream | None = None
        self.owner: object | None = None

    def open(self, body: object, owner: object) -> tuple[OpenDecision, DataSendStream | None]:
        """Decide an ``open``; on success the new stream is registered to ``owner``."""
        running = self.active is not None and not self.active.closed
        decision = decide_open(body, self.gate, running)
        if not decision.accepted or decision.stream_id is None:
            return decision, None
        stream = DataSendStream(decision.stream_id, max_chunk=self.max_chunk)
        self.active = stream
        self.owner = owner
        return decision, stream

    def release(self, stream: DataSendStream) -> None:
        """Free the slot once ``stream`` is over (idempotent)."""
        if self.active is stream:
            self.active = None
            self.owner = None
