"""``/metrics``: Prometheus text through prometheus-client, labelled by camera.

Two kinds of figures. Those the camera already counts (ffmpeg restarts, fragments and bytes
read, prebuffer seconds, HAP sessions, pair-verify failures, live sessions) are read from
:class:`~sidecar.camera.status.CameraStatus` at scrape time by a custom collector, so there
is one source of truth. Those that exist only as events (recordings by close reason, bytes sent
to hubs, first-byte latency, motion by source) are counted here as the events arrive. Each
server owns its own registry: two sidecars in one process (tests) never share counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..camera.events import CameraEvent, MotionChanged, RecordingEnded
from ..camera.status import CameraStatus

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FIRST_BYTE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0)


class _SnapshotCollector(Collector):
    def __init__(self, snapshots: Callable[[], Sequence[CameraStatus]]) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        snaps = self._snapshots()
        restarts = CounterMetricFamily("hksv_ffmpeg_restarts", "ffmpeg starts after the first one", labels=["camera"])
        fragments = CounterMetricFamily("hksv_fragments", "fMP4 fragments produced by ffmpeg", labels=["camera"])
        bytes_in = CounterMetricFamily("hksv_ffmpeg_bytes", "fMP4 bytes read from ffmpeg", labels=["camera"])
        prebuffer = GaugeMetricFamily("hksv_prebuffer_seconds", "media seconds held in the prebuffer",
                                      labels=["camera"])
        up = GaugeMetricFamily("hksv_ffmpeg_running", "1 while ffmpeg delivers fragments", labels=["camera"])
        hap = GaugeMetricFamily("hksv_hap_sessions", "verified HAP sessions", labels=["camera"])
        verify = CounterMetricFamily("hksv_pair_verify_failures", "pair-verify attempts refused since start",
                                     labels=["camera"])
        setup = GaugeMetricFamily("hksv_setup_code_failures", "failed setup-code attempts (persisted)",
                                  labels=["camera"])
        live = GaugeMetricFamily("hksv_live_sessions", "live view sessions", labels=["camera"])
        paired = GaugeMetricFamily("hksv_paired", "1 when at least one controller is paired", labels=["camera"])
        for s in snaps:
            label = [s.name]
            restarts.add_metric(label, s.media.restarts)
            fragments.add_metric(label, s.media.fragments)
            bytes_in.add_metric(label, s.media.bytes_in)
            prebuffer.add_metric(label, s.media.prebuffer_s)
            up.add_metric(label, 1.0 if s.media.state == "running" else 0.0)
            hap.add_metric(label, s.hap_sessions)
            verify.add_metric(label, s.pair_verify_failures)
            setup.add_metric(label, s.failed_setup_attempts)
            live.add_metric(label, s.live_sessions)
            paired.add_metric(label, 1.0 if s.paired else 0.0)
        return [restarts, fragments, bytes_in, prebuffer, up, hap, verify, setup, live, paired]


class Metrics:
    """The registry of one web server. Feed it camera events with :meth:`observe`."""

    def __init__(self, snapshots: Callable[[], Sequence[CameraStatus]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_SnapshotCollector(snapshots))
        self.recordings = Counter("hksv_recordings", "recordings ended, by close reason and who closed",
                                  ["camera", "reason", "closed_by"], registry=self.registry)
        self.bytes_sent = Counter("hksv_recording_bytes_sent", "media bytes sent to hubs",
                                  ["camera"], registry=self.registry)
        self.first_byte = Histogram("hksv_recording_first_byte_seconds",
                                    "from a hub's open to the first media byte handed to the socket",
                                    ["camera"], buckets=FIRST_BYTE_BUCKETS, registry=self.registry)
        self.motion = Counter("hksv_motion_events", "motion events, by source", ["camera", "source"],
                              registry=self.registry)

    def observe(self, event: CameraEvent) -> None:
        if isinstance(event, MotionChanged) and event.active:
            self.motion.labels(event.camera, event.source).inc()
        elif isinstance(event, RecordingEnded):
            self.recordings.labels(event.camera, event.reason, event.closed_by).inc()
            self.bytes_sent.labels(event.camera).inc(event.bytes_sent)
            if event.first_byte_s is not None:
                self.first_byte.labels(event.camera).observe(event.first_byte_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
