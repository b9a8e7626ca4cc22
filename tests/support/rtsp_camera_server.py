"""A real RTSP camera for tests: GStreamer's RTSP server on 127.0.0.1.

Runs under Debian's /usr/bin/python3 (which has ``gi``), as a subprocess of the test. Prints
``READY <port>`` once it listens. H.264 from x264enc with a fixed keyframe interval (``--gop``
frames), optional AAC audio, the ball pattern so the picture moves.

``--backchannel FILE``: an ONVIF server (``RTSPOnvifServer``) whose stream also offers a speaker
track (PCMU/8000, ``a=sendonly``) to a client that asks with ``Require:
www.onvif.org/ver20/backchannel``; what a client sends there is written to FILE as raw mu-law
bytes. Without it, such a client is refused, as a camera without a speaker refuses it.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--gop", type=int, default=60, help="keyframe interval in frames")
    parser.add_argument("--bitrate", type=int, default=400, help="kbit/s")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--h265-file", help="serve this H.265 Matroska file (made once per test session) "
                        "instead of encoding H.264 live: H.265 cameras without the cost of live x265")
    parser.add_argument("--user", help="require RTSP basic auth with this user...")
    parser.add_argument("--password", help="...and this password")
    parser.add_argument("--backchannel", help="offer an ONVIF backchannel; write what arrives (mu-law) here")
    args = parser.parse_args()

    Gst.init(None)
    video = (
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
        f"framerate={args.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
        f"bitrate={args.bitrate} bframes=0 ! video/x-h264,profile=main ! h264parse ! rtph264pay name=pay0 pt=96"
    )
    if args.h265_file:
        video = (
            f"filesrc location={args.h265_file} ! matroskademux ! h265parse config-interval=-1 ! "
            "rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    audio = (
        " audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=32000,channels=1 ! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
    )
    launch = f"( {video}{'' if args.no_audio else audio} )"

    if args.backchannel:
        server = GstRtspServer.RTSPOnvifServer()
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        factory.set_backchannel_launch(
            '( capsfilter caps="application/x-rtp, media=audio, payload=0, clock-rate=8000, encoding-name=PCMU" '
            f'name=depay_backchannel ! rtppcmudepay ! filesink location="{args.backchannel}" async=false '
            'sync=false buffer-mode=unbuffered )')
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia.__gtype__)
    else:
        server = GstRtspServer.RTSPServer()
        factory = GstRtspServer.RTSPMediaFactory()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory.set_launch(launch)
    factory.set_shared(not args.backchannel)  # a backchannel belongs to one client
    if args.user:
        # Basic auth: a client without the right credentials gets "401 Unauthorized".
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
