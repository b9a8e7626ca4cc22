"""The status page's HTML: server-rendered, no scripts, a few lines of CSS, readable on a phone.

Every value is escaped here (camera names, errors, controller ids are all text from outside).
The setup code and the QR code only appear while a camera is unpaired: once paired, the code
would only let someone else pair after a reset, so it is not shown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape
from typing import Protocol
from urllib.parse import quote

import segno

from ..camera.status import CameraStatus
from ..triggers.detector_params import DetectorStatus
from .journal import MAX_ENTRIES, JournalEntry, RecordingRecord

__all__ = ["ClipInfo", "camera_page", "confirm_reset_page", "message_page", "overview_page", "qr_svg"]

MAX_CLIPS_LISTED = 50

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1d2733;color:#fff;padding:.6em 1em}header a{color:#fff;text-decoration:none}
main{padding:.8em;max-width:60em;margin:auto}
.card{background:#fff;border-radius:8px;padding:.8em 1em;margin:0 0 1em;box-shadow:0 1px 2px #0002}
.card h2{margin:.1em 0 .4em;font-size:1.2em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em .8em;margin:0}dt{color:#666}dd{margin:0}
.ok{color:#176b2c}.bad{color:#b00020}.warn{color:#8a5a00}
.qr svg{display:block;margin:.4em 0}.code{font:bold 1.4em monospace;letter-spacing:.1em}
form{display:inline-block;margin:.3em .4em .3em 0}button{font-size:1em;padding:.35em .8em}
input[type=password]{width:9em}
ol.events{list-style:none;padding:0}ol.events li{background:#fff;border-radius:6px;padding:.5em .8em;
margin:.4em 0;box-shadow:0 1px 2px #0002}.verdict{font-weight:600}.small{color:#666;font-size:.9em}
table{border-collapse:collapse}td,th{padding:.15em .5em;text-align:left}
"""


def _t(at: float | None) -> str:
    if at is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _n(value: float | int | None, fmt: str = "{:.0f}", unit: str = "") -> str:
    if value is None:
        return "—"
    return fmt.format(value) + unit


def _bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1000:
        return f"{n / 1000:.0f} kB"
    return f"{n} B"


def _page(title: str, body: str, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">{refresh}'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f'<header><a href="/">hksv-sidecar</a> · {escape(title)}</header><main>{body}</main></body></html>')


def qr_svg(uri: str) -> str:
    """The pairing QR code as an inline SVG (segno), for the Home app's camera scanner."""
    return str(segno.make(uri, micro=False).svg_inline(scale=6, border=2))


def _media(s: CameraStatus, restart_in: float | None, failed: bool = False) -> str:
    m = s.media
    if not m.wanted and m.state == "stopped":
        state = '<span class="small">stopped (recording is off in the Home app: no ffmpeg needed)</span>'
    elif m.state == "running":
        state = '<span class="ok">running</span>'
    elif m.state == "backoff":
        when = f" in {restart_in:.0f} s" if restart_in is not None else ""
        what = f"failed (retrying{when})" if failed else f"restarting{when}"
        state = f'<span class="bad">{what}</span>: {escape(m.last_error or "ffmpeg stopped")}'
    elif m.state == "starting":
        state = '<span class="warn">starting</span>'
    else:
        state = escape(m.state) + (f': {escape(m.last_error)}' if m.last_error else "")
    measured = "—"
    if m.width:
        measured = (f"{m.width}x{m.height}, {_n(m.fps, '{:.1f}')} fps, {_n(m.bitrate_kbps, '{:.0f}', ' kbps')}, "
                    f"keyframe every {_n(m.keyframe_interval_s, '{:.1f}', ' s')}")
    warning = f'<dt>warning</dt><dd class="warn">{escape(m.warning)}</dd>' if m.warning else ""
    return (f"<dt>ffmpeg</dt><dd>{state} <span class='small'>(profile {escape(s.profile)}, "
            f"{m.restarts} restart(s))</span></dd><dt>measured</dt><dd>{escape(measured)}</dd>{warning}"
            f"<dt>prebuffer</dt><dd>{m.prebuffer_s:.1f} s held (hubs may ask up to {s.prebuffer_ms / 1000:.0f} s)"
            "</dd>")


def _detector(d: DetectorStatus | None) -> str:
    """The built-in detector's figures, for tuning its sensitivity."""
    if d is None:
        return ""
    state = '<span class="warn">motion</span>' if d.active else "watching"
    if d.calibrating:
        state += " (recalibrating: the whole picture changed)"
    last = "none yet"
    if d.last_trigger_at is not None and d.last_trigger_area is not None:
        last = (f"{_t(d.last_trigger_at)}: {100 * d.last_trigger_area:.1f} % of the picture in "
                f"{d.last_trigger_regions} region(s)")
    return (f"<dt>detector</dt><dd>{state} <span class='small'>({d.frames} frames analysed, {d.dropped} dropped, "
            f"{d.triggers} trigger(s), {d.cpu_s:.1f} s CPU)</span></dd>"
            f"<dt>last frame</dt><dd>{100 * d.last_area:.1f} % changed in {d.last_regions} region(s)</dd>"
            f"<dt>last trigger</dt><dd>{last}</dd>")


def _homekit(s: CameraStatus) -> str:
    if s.paired:
        ctrls = ", ".join(f"{escape(c.id)}{' (admin)' if c.admin else ''}" for c in s.controllers)
        paired = f'<span class="ok">paired</span> <span class="small">{ctrls}</span>'
    else:
        paired = '<span class="warn">not paired</span>'
    return (f"<dt>HomeKit</dt><dd>{paired}</dd><dt>mode</dt><dd>{escape(s.mode)}</dd>"
            f"<dt>recording config</dt><dd>{escape(s.selection or 'none selected yet')}</dd>"
            f"{_record_codec(s)}<dt>live views</dt><dd>{s.live_sessions}</dd>{_secure_video(s)}")


def _secure_video(s: CameraStatus) -> str:
    """The secure-video model's rows (docs/secure-video.md); nothing for a classic camera."""
    if s.homekit_model != "secure_video":
        return ""
    zones = "<br>".join(escape(z) for z in s.zones) or "none (the whole picture)"
    motion = "" if s.motion_enabled else '<dt>motion</dt><dd class="warn">off in the Home app (MotionEnabled)</dd>'
    return ("<dt>HomeKit model</dt><dd>secure video (tvOS 27 hubs) <span class='small'>its own accessory: "
            "switching models means pairing again</span></dd>"
            f"<dt>activity zones</dt><dd>{zones}</dd>{motion}")


def _record_codec(s: CameraStatus) -> str:
    """``record_codec`` when it is not the default; a fall-back of ``auto`` stands out."""
    if s.record_codec == "h264":
        return ""
    css = ' class="warn"' if "fell back" in s.record_codec else ""
    return f"<dt>record codec</dt><dd{css}>{escape(s.record_codec)}</dd>"


def _pairing_block(s: CameraStatus) -> str:
    if s.paired or s.setup_code is None or s.setup_uri is None:
        return ""
    return (f'<div class="qr" id="qr-{escape(s.slug)}">{qr_svg(s.setup_uri)}'
            f'<div>Setup code: <span class="code">{escape(s.setup_code)}</span></div>'
            '<div class="small">Home app → Add Accessory → scan this code.</div>'
            + ('<div class="small">Secure-video model: a new accessory, paired apart from the classic one.</div>'
               if s.homekit_model == "secure_video" else "") + '</div>')


def _last(entry: JournalEntry | None, rec: RecordingRecord | None) -> str:
    motion = "—" if entry is None else f"{_t(entry.at)} ({escape(entry.source)})"
    if rec is None:
        recording = "—"
    else:
        recording = f"{_t(rec.opened_at)}: {escape(rec.outcome)}"
        if rec.ended is not None:
            recording += f" ({_bytes(rec.ended.bytes_sent)})"
    return f"<dt>last motion</dt><dd>{motion}</dd><dt>last recording</dt><dd>{recording}</dd>"


Card = tuple[CameraStatus, JournalEntry | None, RecordingRecord | None, float | None, bool, DetectorStatus | None]


def overview_page(cards: Sequence[Card]) -> str:
    """``cards``: snapshot, last motion, last recording, seconds until ffmpeg restarts, whether
    ffmpeg failed for a cause the user must fix, the detector's figures (None: no detector)."""
    parts = []
    for s, last_motion, last_rec, restart_in, failed, detector in cards:
        href = f"/camera/{quote(s.slug)}"
        parts.append(
            f'<section class="card" id="camera-{escape(s.slug)}"><h2><a href="{href}">{escape(s.name)}</a></h2>'
            f"<dl><dt>source</dt><dd>{escape(s.source)}</dd>{_media(s, restart_in, failed)}"
            f"{_homekit(s)}{_detector(detector)}{_last(last_motion, last_rec)}</dl>{_pairing_block(s)}</section>")
    if not parts:
        parts.append('<p>No camera is running.</p>')
    return _page("cameras", "".join(parts), refresh_s=30)


def _action(slug: str, action: str, label: str, token: str, password: bool, extra: str = "") -> str:
    pw = '<input type="password" name="password" placeholder="web password" required>' if password else ""
    return (f'<form method="post" action="/camera/{quote(slug)}/{action}">'
            f'<input type="hidden" name="csrf" value="{escape(token)}">{extra}{pw}'
            f'<button type="submit" name="go" value="1" id="{action}">{escape(label)}</button></form>')


def _latency(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return (f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s") + " after the open"


def _recording_rows(rec: RecordingRecord, motion_at: float | None) -> str:
    e = rec.ended
    after = "" if motion_at is None else f" ({rec.opened_at - motion_at:+.1f} s after motion)"
    rows = [("hub opened HDS", f"{_t(rec.opened_at)}{after}, stream {rec.stream_id}"),
            ("selection", rec.selection or "—")]
    if e is not None:
        rows += [
            ("prebuffer sent", _n(e.prebuffer_s, "{:.1f}", " s from the keyframe")),
            ("sent", (f"{e.fragments_sent} fragment(s), " if e.fragments_sent else "") + _bytes(e.bytes_sent)),
            ("first byte", _latency(e.first_byte_s)),
            ("ended", f"{_t(e.at)} after {e.duration_s:.1f} s: "
                      + ("connection lost" if e.closed_by == "connection" else e.reason)
                      + (f" ({e.reason_code})" if e.reason_code is not None else "") + f", closed by {e.closed_by}"),
        ]
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)


def _entry(entry: JournalEntry, now: float) -> str:
    verdict = escape(entry.verdict(now))
    if entry.kind == "note":
        return f'<li class="note"><span class="small">{_t(entry.at)}</span> {verdict}</li>'
    if entry.kind == "motion":
        head = (f"<b>motion</b> {_t(entry.at)} → {_t(entry.ended_at) if entry.ended_at else 'still active'} "
                f"<span class='small'>source: {escape(entry.source)}"
                + (f", mode: {escape(entry.mode)}" if entry.mode else "") + "</span>")
        motion_at: float | None = entry.at
    else:
        head = f"<b>recording</b> {_t(entry.at)} <span class='small'>(no motion seen before it)</span>"
        motion_at = None
    rows = "".join(_recording_rows(r, motion_at) for r in entry.recordings)
    table = f"<table>{rows}</table>" if rows else ""
    cls = "ok" if entry.recordings and all(r.ended is None or r.ended.bytes_sent for r in entry.recordings) else "bad"
    if entry.kind == "motion" and not entry.recordings and "waiting" in verdict:
        cls = "small"
    return (f'<li class="{entry.kind}" data-entry="{entry.id}">{head}{table}'
            f'<div class="verdict {cls}">{verdict}</div></li>')


class ClipInfo(Protocol):
    """A clip in the local archive, as the camera page lists it."""

    @property
    def date(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...


def camera_page(s: CameraStatus, entries: Sequence[JournalEntry], clips: Sequence[ClipInfo], *,
                tokens: dict[str, str], password: bool, notice: str | None, now: float,
                restart_in: float | None = None, failed: bool = False,
                detector: DetectorStatus | None = None) -> str:
    notice_html = f'<div class="card ok" id="notice">{escape(notice)}</div>' if notice else ""
    actions = (_action(s.slug, "motion", "Raise a test motion", tokens["motion"], password)
               + _action(s.slug, "restart", "Restart ffmpeg", tokens["restart"], password)
               + _action(s.slug, "reset", "Remove all pairings…", tokens["reset"], password))
    card = (f'<section class="card"><h2>{escape(s.name)}</h2><dl><dt>source</dt><dd>{escape(s.source)}</dd>'
            f"<dt>HAP port</dt><dd>{s.hap_port}</dd>{_media(s, restart_in, failed)}{_homekit(s)}"
            f"{_detector(detector)}</dl>"
            f"{_pairing_block(s)}<div>{actions}</div></section>")
    items = "".join(_entry(e, now) for e in entries) or "<li>No events yet.</li>"
    events = (f'<section><h2>Events <span class="small">(newest first, last {MAX_ENTRIES})</span></h2>'
              f'<ol class="events" id="events">{items}</ol></section>')
    if clips:
        more = len(clips) - MAX_CLIPS_LISTED
        clips = clips[:MAX_CLIPS_LISTED]
        rows = "".join(
            f'<li><a href="/camera/{quote(s.slug)}/clips/{quote(c.date)}/{quote(c.name)}">{escape(c.date)} '
            f"{escape(c.name)}</a> <span class='small'>{_bytes(c.size)}</span></li>" for c in clips)
        if more > 0:
            rows += f"<li class='small'>and {more} older clip(s) in the archive directory</li>"
        archive = f'<section class="card"><h2>Local clips</h2><ul id="clips">{rows}</ul></section>'
    else:
        archive = ""
    return _page(s.name, notice_html + card + archive + events, refresh_s=None)


def confirm_reset_page(s: CameraStatus, token: str, password: bool) -> str:
    form = _action(s.slug, "reset", "Yes, remove every pairing", token, password,
                   extra='<input type="hidden" name="confirm" value="yes">')
    body = (f'<section class="card"><h2>Remove all pairings of {escape(s.name)}?</h2>'
            "<p>Every Home app user loses this camera and its recordings settings; it must be added again "
            f'with its setup code.</p>{form} <a href="/camera/{quote(s.slug)}">Cancel</a></section>')
    return _page("confirm reset", body)


def message_page(title: str, text: str) -> str:
    return _page(title, f'<section class="card"><p>{escape(text)}</p><a href="/">Back</a></section>')
