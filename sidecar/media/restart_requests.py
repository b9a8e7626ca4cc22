"""The restarts the sidecar asks of a running pipeline, and the one a recording holds back.

Every restart the sidecar wants for itself (the stream policy's rules, a reconfigure, the
user's button) ends the current ffmpeg run and starts the next at once, without a backoff wait.
While a run goes on, a gated request is first put to the pipeline's restart gate: the camera
holds restarts while a hub is recording, and the held reason waits here until it is released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .runner import FfmpegRun

log = logging.getLogger(__name__)


class RestartRequests:
    """The pending restart's reason (``reason``) and the held one (``held``) of one pipeline.

    ``interrupt`` is the pipeline's event that cuts a backoff wait short; a request sets it.
    """

    def __init__(self, name: str, interrupt: asyncio.Event) -> None:
        self._name = name
        self._interrupt = interrupt
        self.reason: str | None = None  # a planned restart (reconfigure, audio, fallback)
        self.held: str | None = None  # what the restart gate holds until release()

    def ask(self, reason: str, run: FfmpegRun | None, gate: Callable[[str], bool] | None) -> None:
        """End ``run`` (the current one, if any) and start the next at once. With a ``gate``,
        a request made while a run goes on is first put to it: False holds the request."""
        if gate is not None and run is not None and self.reason is None and not gate(reason):
            if self.held is None:
                log.info("%s: ffmpeg restart held until the recording in progress ends: %s", self._name, reason)
                self.held = reason
            else:
                self.held += f"; {reason}"
            return
        if self.reason is None:
            self.reason = reason
        self._interrupt.set()
        if run is not None:
            run.request_stop(f"restart: {reason}")

    def release(self, run: FfmpegRun | None, stopping: bool) -> bool:
        """Carry out the held restart, if the run it was meant for still goes on."""
        reason, self.held = self.held, None
        if reason is None or run is None or stopping:
            return False
        self.ask(reason, run, None)
        return True
