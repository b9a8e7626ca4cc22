"""Where what a camera's ffmpeg writes on stdout goes: a sans-IO core.

Fed the pipe bytes of each run, :class:`StreamIntake` cuts them into an init segment and
fragments (:class:`~.fmp4.Fmp4Reader`), files them in the prebuffer (one generation per run),
lets the :class:`~.stream_policy.StreamPolicy` judge them, keeps the copy-mode probe (codec,
size, frame rate, keyframe interval, read from the stream itself) and counts bytes and
fragments. It hands back the policy's actions; carrying them out, and everything about
processes, tasks and time, is the pipeline's (:mod:`.pipeline`).
"""

from __future__ import annotations

from dataclasses import replace

from .fmp4 import Fmp4Reader
from .prebuffer import Prebuffer
from .probe import SourceProbe, probe_from_init
from .segments import Fmp4Event, Fragment, InitSegment
from .stream_policy import Action, StreamPolicy

__all__ = ["StreamIntake"]


class StreamIntake:
    """One camera's ffmpeg output, run after run, into ``prebuffer`` and before ``policy``."""

    def __init__(self, prebuffer: Prebuffer, policy: StreamPolicy) -> None:
        self.prebuffer = prebuffer
        self.policy = policy
        self.probe: SourceProbe | None = None  # copy mode: from the stream; else set by the caller
        self.bytes_in = 0
        self.fragments = 0  # over all runs
        self.run_fragments = 0  # in the current run
        self._reader = Fmp4Reader()

    def start_run(self) -> None:
        """A new ffmpeg run: a fresh reader (its stream starts with an init segment)."""
        self._reader = Fmp4Reader()
        self.run_fragments = 0

    def feed(self, chunk: bytes) -> list[Fmp4Event]:
        """Pipe bytes in, complete units out (hand each to :meth:`on_init` or :meth:`on_fragment`).

        Raises:
            Fmp4Error: the run's output is corrupt; only a new run recovers.
        """
        self.bytes_in += len(chunk)
        return self._reader.feed(chunk)

    def get_buffer(self) -> memoryview:
        """Where the next pipe read goes (:meth:`.Fmp4Reader.get_buffer`); then :meth:`buffer_updated`."""
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> list[Fmp4Event]:
        """:meth:`feed` for bytes read into :meth:`get_buffer`.

        Raises:
            Fmp4Error: the run's output is corrupt; only a new run recovers.
        """
        self.bytes_in += nbytes
        return self._reader.buffer_updated(nbytes)

    def on_init(self, init: InitSegment, now: float) -> tuple[int, list[Action]]:
        """The run's init segment starts a prebuffer generation: its number, and what to do."""
        generation = self.prebuffer.start_generation(init, now)
        copy = self.policy.profile.is_copy  # before the policy may fall back to transcoding
        actions = self.policy.on_init(init)
        if copy:
            self.probe = probe_from_init(init, has_audio=self.policy.source_has_audio)
        return generation, actions

    def on_fragment(self, fragment: Fragment, now: float) -> list[Action]:
        """A fragment of the run, received at ``now``: into the prebuffer, then judged."""
        self.fragments += 1
        self.run_fragments += 1
        self.prebuffer.push(fragment, now)
        copy = self.policy.profile.is_copy  # before the policy may fall back to transcoding
        actions = self.policy.on_fragment(fragment)
        probe = self.probe
        if copy and probe is not None and self.prebuffer.init is not None:
            m = self.policy.monitor.measurement
            if (probe.fps, probe.keyframe_interval_s) != (m.fps, m.keyframe_interval_s):  # a new probe when it changes
                self.probe = replace(probe, fps=m.fps, keyframe_interval_s=m.keyframe_interval_s)
        return actions
