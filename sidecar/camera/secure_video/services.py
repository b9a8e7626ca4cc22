"""The secure-video model's accessory database: its services, built around the classic pieces it
keeps (docs/secure-video.md §Services).

Kept from the classic model, as the same objects: the MotionSensor (plus ContributingSensors
and MotionEnabled), Camera Recording Management (0x204, with RecordingAudioActive), the data
stream (0x129) and the snapshot switches of CameraOperatingMode (0x21A). Moved: HomeKitCameraActive,
the indicator, night vision and ManuallyDisabled go to Global Operating Mode (0x8032). Never
published: the classic RTP stream management (0x110), nor Buffer (0x8000), Key (0x8050) or Client
Certificate (0x8080) Management. Shapes only; behaviour is attached by the camera adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...hap import Characteristic, Format, Service, perms
from ..services import CameraServices
from . import tlv

__all__ = ["SecureVideoServices", "build_secure_video"]

PR = perms("pr")
PR_EV = perms("pr", "ev")
PR_PW_EV = perms("pr", "pw", "ev")
PR_PW = perms("pr", "pw")
PR_PW_WR = perms("pr", "pw", "wr")
PR_PW_EV_TW = perms("pr", "pw", "ev", "tw")

#: Types never published on a secure-video accessory (docs/secure-video.md §Services).
FORBIDDEN = frozenset({"110", "8000", "8050", "8080"})


@dataclass
class SecureVideoServices:
    capabilities: Characteristic
    streaming_enabled: Characteristic
    zones_active: Characteristic
    zones: Characteristic
    setup_endpoints: Characteristic
    control: Characteristic
    tier_status_active: Characteristic
    tier_streaming_enabled: Characteristic
    video_tiers: Characteristic
    audio_tiers: Characteristic
    solicit_offer: Characteristic
    provide_answer: Characteristic
    webrtc_control: Characteristic
    webrtc_sessions: Characteristic
    webrtc_video_tiers: Characteristic
    webrtc_audio_tiers: Characteristic
    contributing_sensors: Characteristic
    motion_enabled: Characteristic
    sensor_ids: tuple[Characteristic, ...]
    services: list[Service]


def build_secure_video(classic: CameraServices, sensor_id: bytes, *,
                       setup_write_response: bool = False) -> SecureVideoServices:
    """The published services, built around ``classic`` (which must have the indicator).
    ``setup_write_response``: SetupEndpoints also has the write-response permission (``wr``), for
    hubs that take its answer from the write (docs/secure-video.md §Certain and uncertain)."""
    assert classic.indicator is not None, "the secure-video model always has the indicator"
    capabilities = Characteristic("8011", Format.TLV8, PR_EV)
    capabilities_service = Service("8010", [Characteristic("37", Format.STRING, PR, value=tlv.MODEL_VERSION),
                                            capabilities])

    streaming_enabled = Characteristic("8041", Format.BOOL, PR_PW_EV_TW, value=True, admin_write=True)
    global_chars = [classic.homekit_active, streaming_enabled, classic.indicator]
    global_chars += [c for c in (classic.night_vision, classic.manually_disabled) if c is not None]
    global_mode = Service("8032", global_chars)
    operating_mode = Service("21A", [classic.event_snapshots, classic.periodic_snapshots])

    zones_active = Characteristic("B0", Format.UINT8, PR_PW_EV, value=1, valid_values=(0, 1), admin_write=True)
    zones = Characteristic("8022", Format.TLV8, PR_PW_EV, value=tlv.Zones(()).encode(), admin_write=True)
    zones_service = Service("8021", [zones_active, zones, Characteristic("37", Format.STRING, PR, value="1.0")])

    def sensor_uuid() -> Characteristic:
        return Characteristic("805B", Format.DATA, PR, value=sensor_id)

    setup_endpoints = Characteristic("118", Format.TLV8, PR_PW_WR if setup_write_response else PR_PW,
                                     value=bytes.fromhex("020102"))
    control = Characteristic("8045", Format.TLV8, PR_PW_WR)
    tier_status_active = Characteristic("75", Format.BOOL, PR_EV, value=True)
    tier_streaming_enabled = Characteristic("8041", Format.BOOL, PR_EV, value=True)
    video_tiers = Characteristic("8043", Format.TLV8, PR_EV)
    audio_tiers = Characteristic("8044", Format.TLV8, PR_EV)
    sensor_a, sensor_b = sensor_uuid(), sensor_uuid()
    multi_tier = Service("8031", [
        setup_endpoints, control, tier_status_active, tier_streaming_enabled, sensor_a, video_tiers, audio_tiers,
        Characteristic("116", Format.TLV8, PR, value=tlv.SUPPORTED_RTP)])

    solicit_offer = Characteristic("8053", Format.TLV8, PR_PW_WR)
    provide_answer = Characteristic("8054", Format.TLV8, PR_PW_WR)
    webrtc_control = Characteristic("8056", Format.TLV8, PR_PW_WR)
    webrtc_sessions = Characteristic("8057", Format.UINT8, PR_EV, value=0)
    webrtc_video_tiers = Characteristic("8059", Format.TLV8, PR_EV)
    webrtc_audio_tiers = Characteristic("805A", Format.TLV8, PR_EV)
    webrtc = Service("8033", [solicit_offer, provide_answer, webrtc_control, webrtc_sessions, webrtc_video_tiers,
                              webrtc_audio_tiers, sensor_b])
    multi_tier.link(webrtc, classic.data_stream)
    webrtc.link(multi_tier, classic.data_stream)

    contributing = Characteristic("8086", Format.TLV8, PR, value=tlv.encode_contributing_sensors([sensor_id]))
    motion_enabled = Characteristic("8087", Format.BOOL, PR_PW_EV, value=True, admin_write=True)
    classic.motion_sensor.add(contributing, motion_enabled)

    services = [capabilities_service, global_mode, operating_mode, zones_service, multi_tier, webrtc,
                classic.recording, classic.data_stream, classic.motion_sensor]
    if classic.doorbell is not None:
        services.append(classic.doorbell)
    return SecureVideoServices(
        capabilities=capabilities, streaming_enabled=streaming_enabled, zones_active=zones_active, zones=zones,
        setup_endpoints=setup_endpoints, control=control, tier_status_active=tier_status_active,
        tier_streaming_enabled=tier_streaming_enabled, video_tiers=video_tiers, audio_tiers=audio_tiers,
        solicit_offer=solicit_offer, provide_answer=provide_answer, webrtc_control=webrtc_control,
        webrtc_sessions=webrtc_sessions, webrtc_video_tiers=webrtc_video_tiers,
        webrtc_audio_tiers=webrtc_audio_tiers, contributing_sensors=contributing, motion_enabled=motion_enabled,
        sensor_ids=(sensor_a, sensor_b), services=services)
