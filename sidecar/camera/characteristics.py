"""The classic camera services' HAP characteristics wired to the camera's parts.

:class:`CharacteristicWiring` gives the characteristics a hub writes their handlers: the
operating-mode switches and the recording selection go to the core (whose answer the camera
carries out), SetupDataStream to the HDS listener, and live view's SetupEndpoints and
SelectedRTPStreamConfiguration to live view. It also sets the fixed live-view capabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..hap import HapError, HapStatus, WriteContext
from ..hds import HDSServer, SetupError
from .live.supported_streams import supported_audio_stream, supported_rtp, supported_video_stream

if TYPE_CHECKING:
    from .core import Action, CameraCore
    from .live import LiveStreaming
    from .services import CameraServices

__all__ = ["CharacteristicWiring"]

# The characteristics a hub writes whose rules are the core's (names as in CameraServices).
_WRITES = ("recording_active", "homekit_active", "event_snapshots", "periodic_snapshots",
           "recording_audio_active", "rtp_active", "indicator", "night_vision", "selected")


class CharacteristicWiring:
    """The write and read handlers of one camera's classic services."""

    def __init__(self, services: CameraServices, core: CameraCore, hds: HDSServer, live: LiveStreaming,
                 act: Callable[[list[Action]], None]) -> None:
        self.services = services
        self.core = core
        self.hds = hds
        self.live = live
        self._act = act

    def wire(self) -> None:
        s = self.services
        for name in _WRITES:
            char = getattr(s, name)
            if char is not None:
                char.on_write = partial(self._write, "selection" if name == "selected" else name)
        s.selected.on_read = lambda ctx: self.core.offer.read_selection()
        s.setup_data_stream.on_write = self._write_setup_data_stream
        s.setup_data_stream.on_read = lambda ctx: self.hds.read_value()
        s.supported_video_stream.value = supported_video_stream()
        s.supported_audio_stream.value = supported_audio_stream()
        s.supported_rtp.value = supported_rtp()
        s.setup_endpoints.on_write = self.live.write_setup
        s.setup_endpoints.on_read = self.live.read_setup
        s.selected_rtp.on_write = self.live.write_selected
        s.selected_rtp.on_read = self.live.read_selected

    def _write(self, name: str, value: Any, ctx: WriteContext) -> None:
        self._act(self.core.write(name, value))

    def _write_setup_data_stream(self, value: bytes, ctx: WriteContext) -> bytes:
        try:
            return self.hds.setup(value, shared_secret=ctx.session.shared_secret,
                                  on_hap_close=ctx.session.add_close_callback)
        except SetupError as exc:
            raise HapError(HapStatus.INVALID_VALUE, str(exc)) from None
