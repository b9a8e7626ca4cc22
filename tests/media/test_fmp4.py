"""The fMP4 reader, sans-IO: real ffmpeg output fed in every split, and corrupt input."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.media import AudioTrack, Fmp4Error, Fmp4Reader, Fragment, InitSegment, VideoTrack


def _feed_all(data: bytes, cuts: list[int]) -> list[InitSegment | Fragment]:
    reader = Fmp4Reader()
    events: list[InitSegment | Fragment] = []
    pos = 0
    for cut in sorted(set(cuts)):
        events += reader.feed(data[pos:cut])
        pos = cut
    events += reader.feed(data[pos:])
    reader.eof()
    return events


def _summary(events: list[InitSegment | Fragment]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, InitSegment):
            out.append(("init", e.data, e.tracks))
        else:
            out.append(
                ("frag", bytes(e.data), e.sequence_number, e.keyframe, e.duration_s, e.tracks, e.keyframe_times_s)
            )
    return out


def test_reads_ffmpeg_output(sample_fmp4: bytes) -> None:
    events = _feed_all(sample_fmp4, [])
    init = events[0]
    assert isinstance(init, InitSegment)
    video, audio = init.video, init.audio
    assert isinstance(video, VideoTrack) and isinstance(audio, AudioTrack)
    assert (video.codec, video.width, video.height) == ("avc1", 320, 240)
    assert video.profile_idc in (66, 77, 100) and video.level_idc > 0
    assert video.codec_string.startswith("avc1.")
    assert (audio.codec, audio.sample_rate, audio.channels, audio.audio_object_type) == ("mp4a", 32000, 1, 2)
    assert init.data[4:8] == b"ftyp"
    fragments = [e for e in events[1:] if isinstance(e, Fragment)]
    assert len(fragments) == len(events) - 1 == 4
    assert all(f.keyframe for f in fragments)
    assert [round(f.duration_s, 2) for f in fragments][1:] == [4.0, 4.0, 1.0]
    assert fragments[0].duration_s <= 4.0 + 1 / 15
    assert [f.sequence_number for f in fragments] == [1, 2, 3, 4]
    assert len(init.data) + sum(f.size for f in fragments) == len(sample_fmp4)
    for f in fragments:
        assert bytes(f.data[4:8]) == b"moof"
        assert f.tracks[0].track_id == video.track_id and f.tracks[0].sample_count in (60, 15)
        assert f.track(audio.track_id) is not None
        assert f.keyframe_times_s[0] == pytest.approx(f.start_s)


def _read_all(data: bytes, sizes: list[int], feeds: list[bool]) -> tuple[list[InitSegment | Fragment], Fmp4Reader]:
    """Like a pipe reader: each read of ``sizes[i]`` bytes (at most what get_buffer offers) goes
    into get_buffer() + buffer_updated(), or through feed() when ``feeds[i]`` (the two mixed)."""
    reader = Fmp4Reader()
    events: list[InitSegment | Fragment] = []
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else 65536
        if feeds and feeds[i % len(feeds)]:
            events += reader.feed(data[pos : pos + size])
            pos += len(data[pos : pos + size])
        else:
            buf = reader.get_buffer()
            piece = data[pos : pos + min(size, len(buf))]
            buf[: len(piece)] = piece
            events += reader.buffer_updated(len(piece))
            pos += len(piece)
        i += 1
    reader.eof()
    return events, reader


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=300_000), max_size=20), st.lists(st.booleans(), max_size=7))
def test_reads_into_get_buffer_give_identical_events(sample_fmp4: bytes, sizes: list[int], feeds: list[bool]) -> None:
    events, reader = _read_all(sample_fmp4, sizes, feeds)
    assert _summary(events) == _summary(_feed_all(sample_fmp4, []))
    assert reader.buffered == 0 and reader.bytes_in == len(sample_fmp4)


def test_a_fragment_is_read_straight_into_its_own_buffer(sample_fmp4: bytes) -> None:
    """Once the mdat header is in, get_buffer() is the rest of that fragment and nothing more:
    the payload lands where it stays (the fragment's data), so it is never copied or joined."""
    init = _feed_all(sample_fmp4, [])[0]
    reader = Fmp4Reader()
    assert reader.feed(init.data)[0] == init
    rest = sample_fmp4[len(init.data) :]
    buf = reader.get_buffer()
    head = len(buf)  # the scratch: the moof, the mdat header and the first payload bytes
    buf[:] = rest[:head]
    assert reader.buffer_updated(head) == []
    assert reader.buffered == head
    unit = reader.get_buffer()
    first_size = head + len(unit)
    unit[: len(unit) - 1] = rest[head : first_size - 1]
    assert reader.buffer_updated(len(unit) - 1) == []
    last = reader.get_buffer()
    assert len(last) == 1  # never past the fragment's end
    last[0] = rest[first_size - 1]
    (fragment,) = reader.buffer_updated(1)
    assert isinstance(fragment, Fragment) and bytes(fragment.data) == rest[:first_size]
    assert fragment.data.readonly and fragment.data.obj is unit.obj
    assert reader.buffered == 0 and len(reader.get_buffer()) == head  # the scratch again


def test_single_chunk_fragments_are_zero_copy_slices(sample_fmp4: bytes) -> None:
    reader = Fmp4Reader()
    events = reader.feed(sample_fmp4)
    fragment = events[1]
    assert isinstance(fragment, Fragment)
    assert fragment.data.obj is sample_fmp4  # a view of the bytes we fed, not a copy
    assert fragment.data.readonly


def test_byte_by_byte(sample_fmp4: bytes) -> None:
    init_and_first = _feed_all(sample_fmp4, [])[:2]
    size = len(init_and_first[0].data) + init_and_first[1].size  # type: ignore[union-attr]
    reader = Fmp4Reader()
    events: list[InitSegment | Fragment] = []
    for i in range(size):
        events += reader.feed(sample_fmp4[i : i + 1])
    assert _summary(events) == _summary(init_and_first)
    assert reader.buffered == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=2_000_000), max_size=40))
def test_random_splits_give_identical_events(sample_fmp4: bytes, cuts: list[int]) -> None:
    cuts = [c % (len(sample_fmp4) + 1) for c in cuts]
    assert _summary(_feed_all(sample_fmp4, cuts)) == _summary(_feed_all(sample_fmp4, []))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=4096))
def test_random_bytes_raise_only_fmp4error(data: bytes) -> None:
    reader = Fmp4Reader()
    try:
        reader.feed(data)
        reader.eof()
    except Fmp4Error:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_headers_raise_only_fmp4error(sample_fmp4: bytes, data: st.DataObject) -> None:
    # Mutate the metadata (init segment and the first moof), where the parser actually looks.
    head = bytearray(sample_fmp4[:120_000])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, 3000))
        head[pos] = data.draw(st.integers(0, 255))
    split = data.draw(st.integers(0, len(head)))
    reader = Fmp4Reader()
    try:
        if data.draw(st.booleans()):  # as a pipe reader does: into get_buffer(), a piece at a time
            pos = 0
            while pos < len(head):
                buf = reader.get_buffer()
                piece = head[pos : pos + min(len(buf), split or 1)]
                buf[: len(piece)] = piece
                reader.buffer_updated(len(piece))
                pos += len(piece)
        else:
            reader.feed(bytes(head[:split]))
            reader.feed(bytes(head[split:]))
    except Fmp4Error:
        pass


def test_giant_box_size_fails_fast_without_allocating() -> None:
    tracemalloc.start()
    try:
        reader = Fmp4Reader()
        with pytest.raises(Fmp4Error, match="exceeds the cap"):
            reader.feed(struct.pack(">I4s", 0xFFFF_FFF0, b"mdat"))
        reader = Fmp4Reader()
        with pytest.raises(Fmp4Error, match="exceeds the cap"):
            reader.feed(struct.pack(">I4sQ", 1, b"moov", 1 << 62))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_giant_mdat_inside_a_fragment_is_refused(sample_fmp4: bytes) -> None:
    events = _feed_all(sample_fmp4, [])
    init = events[0]
    fragment = events[1]
    assert isinstance(init, InitSegment) and isinstance(fragment, Fragment)
    moof_size = struct.unpack(">I", fragment.data[:4])[0]
    corrupt = bytes(fragment.data[:moof_size]) + struct.pack(">I4s", 0xF000_0000, b"mdat")
    reader = Fmp4Reader()
    reader.feed(init.data)
    with pytest.raises(Fmp4Error):
        reader.feed(corrupt)


def test_reader_stays_failed_after_an_error() -> None:
    reader = Fmp4Reader()
    with pytest.raises(Fmp4Error):
        reader.feed(b"\x00\x00\x00\x08\xff\xfe\xfd\xfc")
    with pytest.raises(Fmp4Error):
        reader.feed(b"")


def test_truncated_stream_is_reported_at_eof(sample_fmp4: bytes) -> None:
    reader = Fmp4Reader()
    events = reader.feed(sample_fmp4[:-100])
    assert len(events) == 4  # init + 3 complete fragments; the last is cut
    with pytest.raises(Fmp4Error, match="stream ended"):
        reader.eof()


def test_structure_errors(sample_fmp4: bytes) -> None:
    init = _feed_all(sample_fmp4, [])[0]
    assert isinstance(init, InitSegment)
    with pytest.raises(Fmp4Error, match="before the init"):
        Fmp4Reader().feed(struct.pack(">I4s", 8, b"moof"))
    with pytest.raises(Fmp4Error, match="mdat outside"):
        Fmp4Reader().feed(struct.pack(">I4s", 8, b"mdat"))
    with pytest.raises(Fmp4Error, match="without a preceding ftyp"):
        Fmp4Reader().feed(init.data[init.data.index(b"moov") - 4 :])
    with pytest.raises(Fmp4Error, match="size 0"):
        Fmp4Reader().feed(struct.pack(">I4s", 0, b"mdat"))
    with pytest.raises(Fmp4Error, match="smaller than its header"):
        Fmp4Reader().feed(struct.pack(">I4s", 4, b"free"))


def test_skippable_boxes_between_fragments_are_dropped(sample_fmp4: bytes) -> None:
    events = _feed_all(sample_fmp4, [])
    init, f1, f2 = events[0], events[1], events[2]
    assert isinstance(init, InitSegment) and isinstance(f1, Fragment) and isinstance(f2, Fragment)
    free = struct.pack(">I4s", 1000, b"free") + bytes(992)
    sidx = struct.pack(">I4s", 20, b"sidx") + bytes(12)
    stream = init.data + sidx + bytes(f1.data) + free + bytes(f2.data)
    got = _feed_all(stream, list(range(0, len(stream), 333)))
    assert _summary(got) == _summary([init, f1, f2])


def test_a_second_init_segment_starts_over(sample_fmp4: bytes) -> None:
    events = _feed_all(sample_fmp4, [])
    init, f1 = events[0], events[1]
    assert isinstance(init, InitSegment) and isinstance(f1, Fragment)
    got = _feed_all(init.data + bytes(f1.data) + init.data + bytes(f1.data), [])
    assert [type(e).__name__ for e in got] == ["InitSegment", "Fragment", "InitSegment", "Fragment"]


_NON_SYNC = 0x0001_0000


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _reference_traf(defaults: tuple[int, int], truns: list[tuple[int, int | None, list[tuple[int, int]]]],
                    video: bool) -> tuple[int, int, bool, tuple[int, ...]]:
    """Sample by sample, as ISO/IEC 14496-12 §8.8.8 reads a trun: (count, duration, first sample
    sync, sync-sample offsets, at most 1000)."""
    default_duration, default_flags = defaults
    count = duration = 0
    first_sync: bool | None = None
    sync: list[int] = []
    for tflags, first_flags, samples in truns:
        for i, (d, f) in enumerate(samples):
            flags = first_flags if i == 0 and first_flags is not None else f if tflags & 0x400 else default_flags
            if first_sync is None:
                first_sync = not flags & _NON_SYNC
            if video and not flags & _NON_SYNC and len(sync) < 1000:
                sync.append(duration)
            duration += d if tflags & 0x100 else default_duration
        count += len(samples)
    return count, duration, bool(first_sync), tuple(sync)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_trun_sample_tables_are_read_as_the_spec_says(data: st.DataObject) -> None:
    """The moof parser reads each trun's table in one unpack and slices its columns: it must give
    what reading it sample by sample gives, whatever fields the table has."""
    from sidecar.media.fmp4_boxes import parse_moof

    video = data.draw(st.booleans())
    defaults = (data.draw(st.integers(0, 5000)), data.draw(st.sampled_from([0, _NON_SYNC, 0x0201_0000])))
    kind = VideoTrack if video else AudioTrack
    track = kind(track_id=1, handler="vide" if video else "soun", timescale=90000, codec="avc1" if video else "mp4a",
                 default_sample_duration=defaults[0], default_sample_flags=defaults[1])
    init = InitSegment(b"", (track,))
    flags_values = st.sampled_from([0, _NON_SYNC, 0x0200_0000, 0x0101_0000, 0xFFFF_FFFF])
    truns = []
    traf = _box(b"tfhd", struct.pack(">II", 0, 1)) + _box(b"tfdt", struct.pack(">IQ", 1 << 24, 12345))
    for _ in range(data.draw(st.integers(1, 3))):
        tflags = 0
        for bit in (0x1, 0x4, 0x100, 0x200, 0x400, 0x800):
            tflags |= bit if data.draw(st.booleans()) else 0
        if not tflags & 0xF00:
            tflags |= 0x100  # a table-less trun is another path; keep one field at least
        first_flags = data.draw(flags_values) if tflags & 0x4 else None
        if data.draw(st.booleans()):
            samples = data.draw(st.lists(st.tuples(st.integers(0, 2**32 - 1), flags_values), max_size=40))
        else:  # long enough for the 1000 sync samples kept per fragment to matter
            samples = [data.draw(st.tuples(st.integers(0, 5000), flags_values))] * data.draw(st.integers(990, 1100))
        body = struct.pack(">II", tflags, len(samples))
        body += struct.pack(">i", 8) if tflags & 0x1 else b""
        body += struct.pack(">I", first_flags) if first_flags is not None else b""
        for d, f in samples:
            for bit, value in ((0x100, d), (0x200, 1000), (0x400, f), (0x800, 2**32 - 5)):
                body += struct.pack(">I", value) if tflags & bit else b""
        traf += _box(b"trun", body)
        truns.append((tflags, first_flags, samples))
    moof = _box(b"moof", _box(b"mfhd", struct.pack(">II", 0, 7)) + _box(b"traf", traf))
    seq, (got,) = parse_moof(memoryview(moof), init)
    assert seq == 7 and (got.track_id, got.base_decode_time) == (1, 12345)
    assert (got.sample_count, got.duration, got.first_sample_sync, got.sync_offsets) == \
        _reference_traf(defaults, truns, video)
