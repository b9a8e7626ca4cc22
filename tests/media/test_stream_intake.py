"""The stream intake (sans-IO): a run's stdout bytes into the prebuffer, the policy and the probe."""

from __future__ import annotations

from sidecar.media import (
    Fragment,
    InitSegment,
    PipelineConfig,
    Prebuffer,
    StreamIntake,
    StreamPolicy,
    load_profiles,
    parse_source,
)


def test_a_run_is_filed_and_the_copy_probe_kept(sample_fmp4: bytes) -> None:
    prebuffer = Prebuffer(serve_ms=60_000)  # keeps every fragment of the sample
    policy = StreamPolicy(PipelineConfig(source=parse_source("rtsp://127.0.0.1:8554/cam")), load_profiles())
    policy.start_run()
    intake = StreamIntake(prebuffer, policy)
    events = intake.feed(sample_fmp4)
    init, fragments = events[0], events[1:]
    assert isinstance(init, InitSegment) and all(isinstance(f, Fragment) for f in fragments)
    generation, actions = intake.on_init(init, 0.0)
    assert actions == [] and prebuffer.init is init and generation == prebuffer.generation
    for i, fragment in enumerate(fragments):
        assert isinstance(fragment, Fragment)
        assert intake.on_fragment(fragment, 4.0 * (i + 1)) == []
    assert intake.bytes_in == len(sample_fmp4)
    assert intake.fragments == intake.run_fragments == len(fragments) == prebuffer.fragment_count
    probe = intake.probe
    assert probe is not None and probe.width == 320 and probe.has_audio and probe.fps is not None

    intake.start_run()  # the next run starts counting again; the totals stay
    assert intake.run_fragments == 0 and intake.fragments == len(fragments)
    assert intake.feed(sample_fmp4[:100]) == []  # a fresh reader: the new run's bytes start over
