"""The HKSV camera's HAP services, with the formats and permissions HAP-NodeJS proved with real hubs.

Only shapes live here (types, formats, permissions, defaults, links); behaviour is attached by
:mod:`sidecar.camera.camera` through the characteristics' handlers. Where Apple's metadata and
HAP-NodeJS differ (the operating-mode flags: bool + timed write vs uint8), we follow
HAP-NodeJS, which is what hubs have been accepting for years (docs/protocol.md §Services).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hap import Characteristic, Format, Perm, Service, perms

__all__ = [
    "CameraServices",
    "OptionalModes",
    "build_services",
]

PR = perms("pr")
PR_EV = perms("pr", "ev")
PR_PW = perms("pr", "pw")
PR_PW_EV = perms("pr", "pw", "ev")
PR_PW_EV_TW = perms("pr", "pw", "ev", "tw")
PR_PW_WR = perms("pr", "pw", "wr")

# SupportedDataStreamTransportConfiguration: one transport, type 0 (HDS over TCP).
HDS_TCP_SUPPORTED = bytes.fromhex("0103010100")


@dataclass(frozen=True)
class OptionalModes:
    """Operating-mode characteristics a camera may have (from the config)."""

    indicator: bool = False
    night_vision: bool = False
    manually_disabled: bool = False


@dataclass
class CameraServices:
    motion_sensor: Service
    motion: Characteristic
    motion_status_active: Characteristic
    recording: Service
    recording_active: Characteristic
    selected: Characteristic
    supported_camera: Characteristic
    supported_video: Characteristic
    supported_audio: Characteristic
    recording_audio_active: Characteristic
    operating_mode: Service
    event_snapshots: Characteristic
    homekit_active: Characteristic
    periodic_snapshots: Characteristic
    indicator: Characteristic | None
    night_vision: Characteristic | None
    manually_disabled: Characteristic | None
    data_stream: Service
    setup_data_stream: Characteristic
    rtp: Service
    rtp_active: Characteristic
    streaming_status: Characteristic
    supported_video_stream: Characteristic
    supported_audio_stream: Characteristic
    supported_rtp: Characteristic
    selected_rtp: Characteristic
    setup_endpoints: Characteristic
    doorbell: Service | None
    doorbell_press: Characteristic | None
    microphone: Service | None = None
    microphone_mute: Characteristic | None = None
    microphone_volume: Characteristic | None = None
    speaker: Service | None = None
    speaker_mute: Characteristic | None = None
    speaker_volume: Characteristic | None = None

    def all(self) -> list[Service]:
        services = [self.rtp, self.motion_sensor, self.recording, self.operating_mode, self.data_stream]
        if self.doorbell is not None:
            services.append(self.doorbell)
        services += [s for s in (self.microphone, self.speaker) if s is not None]
        return services

    def talk_muted(self) -> bool:
        """Whether the hub muted the speaker (two-way audio plays nothing then)."""
        mute = self.speaker_mute
        return mute is not None and bool(mute.value)

    def talk_volume(self) -> int:
        """The speaker's volume the hub set, in percent (100 until it sets one)."""
        volume = self.speaker_volume
        return 100 if volume is None or volume.value is None else int(volume.value)


def _uint8(type_: str, perms_: frozenset[Perm], value: int, *, admin: bool = True) -> Characteristic:
    return Characteristic(type_, Format.UINT8, perms_, value=value, valid_values=(0, 1), admin_write=admin)


def _volume() -> Characteristic:
    return Characteristic("119", Format.UINT8, PR_PW_EV, value=100, min_value=0, max_value=100, min_step=1,
                          unit="percentage")


def build_services(*, doorbell: bool, optional: OptionalModes, talk: bool = False) -> CameraServices:
    """The camera's services. ``talk``: Microphone (0x112) and Speaker (0x113), each with Mute
    (0x11A) and Volume (0x119), for two-way audio (docs/two-way-audio.md); without it the
    database is unchanged."""
    motion = Characteristic("22", Format.BOOL, PR_EV)
    motion_active = Characteristic("75", Format.BOOL, PR_EV, value=True)
    motion_sensor = Service("85", [motion, motion_active])

    # CameraRTPStreamManagement (0x110); its behaviour is the live-streaming issue's.
    streaming_status = Characteristic("120", Format.TLV8, PR_EV, value=bytes.fromhex("010100"))
    sv = Characteristic("114", Format.TLV8, PR)
    sa = Characteristic("115", Format.TLV8, PR)
    srtp = Characteristic("116", Format.TLV8, PR)
    rtp_active = _uint8("B0", PR_PW_EV, 1)
    selected_rtp = Characteristic("117", Format.TLV8, PR_PW, value=bytes.fromhex("0103020102"))
    setup_endpoints = Characteristic("118", Format.TLV8, PR_PW, value=bytes.fromhex("020102"))
    rtp = Service("110", [streaming_status, sa, srtp, sv, rtp_active, selected_rtp, setup_endpoints], key="0")

    # DataStreamTransportManagement (0x129)
    setup_ds = Characteristic("131", Format.TLV8, PR_PW_WR)
    data_stream = Service("129", [
        Characteristic("130", Format.TLV8, PR, value=HDS_TCP_SUPPORTED),
        Characteristic("37", Format.STRING, PR, value="1.0"),
        setup_ds,
    ])

    # CameraRecordingManagement (0x204), linked to the data stream and the motion sensor.
    rec_active = _uint8("B0", PR_PW_EV, 0)
    selected = Characteristic("209", Format.TLV8, PR_PW_EV, admin_write=True)
    sup_audio = Characteristic("207", Format.TLV8, PR_EV)
    sup_camera = Characteristic("205", Format.TLV8, PR_EV)
    sup_video = Characteristic("206", Format.TLV8, PR_EV)
    rec_audio = _uint8("226", PR_PW_EV_TW, 0, admin=False)
    recording = Service("204", [rec_active, selected, sup_audio, sup_camera, sup_video, rec_audio])
    recording.link(data_stream, motion_sensor)

    # CameraOperatingMode (0x21A)
    event_snapshots = _uint8("223", PR_PW_EV, 1)
    homekit_active = _uint8("21B", PR_PW_EV, 1)
    periodic = _uint8("225", PR_PW_EV, 1)
    mode_chars = [event_snapshots, homekit_active, periodic]
    indicator = night = disabled = None
    if optional.indicator:
        indicator = Characteristic("21D", Format.BOOL, PR_PW_EV_TW, value=True, admin_write=True)
        mode_chars.append(indicator)
    if optional.night_vision:
        night = Characteristic("11B", Format.BOOL, PR_PW_EV_TW, admin_write=True)
        mode_chars.append(night)
    if optional.manually_disabled:
        disabled = Characteristic("227", Format.BOOL, PR_EV)
        mode_chars.append(disabled)
    operating_mode = Service("21A", mode_chars)

    bell = press = None
    if doorbell:
        press = Characteristic("73", Format.UINT8, PR_EV, valid_values=(0,), immediate=True, always_notify=True)
        bell = Service("121", [press])
        bell.primary = True

    mic = mic_mute = mic_volume = speaker = speaker_mute = speaker_volume = None
    if talk:
        # Mute and Volume on both, as HAP-NodeJS cameras with two-way audio have them (and iOS
        # accepts); not linked to the RTP service, as theirs are not.
        mic_mute = Characteristic("11A", Format.BOOL, PR_PW_EV, value=False)
        mic_volume = _volume()
        mic = Service("112", [mic_mute, mic_volume])
        speaker_mute = Characteristic("11A", Format.BOOL, PR_PW_EV, value=False)
        speaker_volume = _volume()
        speaker = Service("113", [speaker_mute, speaker_volume])

    return CameraServices(
        motion_sensor=motion_sensor, motion=motion, motion_status_active=motion_active,
        recording=recording, recording_active=rec_active, selected=selected, supported_camera=sup_camera,
        supported_video=sup_video, supported_audio=sup_audio, recording_audio_active=rec_audio,
        operating_mode=operating_mode, event_snapshots=event_snapshots, homekit_active=homekit_active,
        periodic_snapshots=periodic, indicator=indicator, night_vision=night, manually_disabled=disabled,
        data_stream=data_stream, setup_data_stream=setup_ds,
        rtp=rtp, rtp_active=rtp_active, streaming_status=streaming_status, supported_video_stream=sv,
        supported_audio_stream=sa, supported_rtp=srtp, selected_rtp=selected_rtp, setup_endpoints=setup_endpoints,
        doorbell=bell, doorbell_press=press,
        microphone=mic, microphone_mute=mic_mute, microphone_volume=mic_volume, speaker=speaker,
        speaker_mute=speaker_mute, speaker_volume=speaker_volume,
    )
