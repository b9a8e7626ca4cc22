"""Live view in the Home app: the RTP service's TLV codecs, what we advertise, the sessions'
rules (:class:`StreamingManager`, sans-IO) and their asyncio adapter (:class:`LiveStreaming`)."""

from .streaming import LiveStreaming
from .streaming_manager import StreamingManager

__all__ = ["LiveStreaming", "StreamingManager"]
