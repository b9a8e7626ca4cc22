"""The status page, /healthz, /metrics, the API and the actions over real HTTP, with the real
sidecar process on the demo camera and a hub simulator (aiohomekit + our hub-side HDS client)
recording from it. One process, one pairing, four recordings: the per-event diagnostics must
name the right ending for a normal close, a hub that vanishes, motion that no hub answered and
the camera switched off mid-stream. Then a browser (Debian's chromium, driven by Playwright)
sees the QR code once the camera is reset, raises a test motion and sees it in the list.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    HOMEKIT_CAMERA_ACTIVE,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import enable_recording, recording_selection
from tests.support.hap_client import pair_off_loop, second_session
from tests.support.ports import free_port
from tests.web.browser import browse_status_page

WEB_PASSWORD = "correct horse battery"
CAMERA_PASSWORD = "hunter2secretpw"
SLUG = "demo-camera"
DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = pytest.mark.slow


class Web:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.text()

    async def json(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.json()

    async def token(self, action: str) -> str:
        _, page = await self.get(f"/camera/{SLUG}")
        m = re.search(rf'action="/camera/{SLUG}/{action}"><input type="hidden" name="csrf" value="([0-9a-f]+)"', page)
        assert m, page
        return m.group(1)

    async def post(self, action: str, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with self.http.post(f"{self.base}/camera/{SLUG}/{action}", data=form, headers=headers or {},
                                  allow_redirects=False) as resp:
            return resp.status, resp.headers.get("Location", "") + await resp.text()

    async def events(self) -> list[dict[str, Any]]:
        status, data = await self.json(f"/api/events?camera={SLUG}&limit=12")
        assert status == 200
        entries: list[dict[str, Any]] = data["cameras"]["Demo Camera"]
        return entries

    async def wait_event(self, predicate: Any, within: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                for entry in await self.events():
                    if predicate(entry):
                        return entry
                await asyncio.sleep(0.2)


async def decodes_cleanly(mp4: bytes) -> bool:
    """ffmpeg decodes every frame of the clip without a single error."""
    proc = await asyncio.create_subprocess_exec("ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "null", "-",
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(mp4)
    return proc.returncode == 0 and err == b"" and len(mp4) > 10_000


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample, as prometheus_client's own text parser reads it."""
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def metric(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    values = [v for n, have, v in samples if n == name and all(have.get(k) == x for k, x in labels.items())]
    assert values, f"{name} {labels} not in /metrics"
    return sum(values)


async def test_status_page_diagnostics_metrics_actions_and_browser(sidecar: Any, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    capture = DeriveCapture.install(monkeypatch)
    monkeypatch.setenv("HKSV_WEB_PASSWORD", WEB_PASSWORD)
    archive = tmp_path / "archive"
    # "Masked": a camera that is down (nothing listens on its port), its password in the URL, and
    # the built-in detector on, so its ffmpeg is wanted even unpaired: /healthz must name it.
    config = tmp_path / "cameras.yaml"
    config.write_text(json.dumps({"cameras": [{
        "name": "Masked", "source": f"rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:{free_port()}/stream",
        "motion": ["detector", "http"]}]}))
    proc = await sidecar("--demo", "--demo-motion-every", "100000", "--http-port", "0",
                         "--archive-dir", str(archive), "--config", str(config))
    port = int((await proc.wait_for_line(r"Demo Camera: .*HAP server on 127.0.0.1:(\d+)", timeout=40)).group(1))
    pin = (await proc.wait_for_line(r"Demo Camera: scan this code in the Home app, or enter setup code (\S+)")).group(1)
    web_port = int((await proc.wait_for_line(r"status page: http://[\d.]+:(\d+)/")).group(1))
    async with aiohttp.ClientSession() as http:
        web = Web(http, f"http://127.0.0.1:{web_port}")

        # -- unpaired: the QR code and setup code are shown; /healthz names the camera that is down
        status, page = await web.get("/")
        assert status == 200 and "<svg" in page and pin in page and "Masked" in page
        status, svg = await web.get(f"/camera/{SLUG}/qr.svg")
        assert status == 200 and svg.startswith("<svg")
        status, health = await web.json("/healthz")
        assert status == 503 and health["healthy"] is False, health
        assert health["cameras"]["Demo Camera"] == {"healthy": True,
                                                    "reason": "ok (recording off: ffmpeg not needed)"}
        masked = health["cameras"]["Masked"]
        assert masked["healthy"] is False and masked["reason"].startswith("ffmpeg has produced no fragment yet")

        # -- a wrong setup code is logged with a count, then a real pairing --------------------
        with pytest.raises(Exception):  # noqa: B017 - aiohomekit raises its own authentication error
            await pair_off_loop(port, "123-45-679" if pin != "123-45-679" else "123-45-670")
        await proc.wait_for_line(r"Demo Camera: wrong setup code from a controller \(1 failed attempt")
        pairing_data = await pair_off_loop(port, pin)
        pairing = second_session(pairing_data)
        try:
            await proc.wait_for_line(r"Demo Camera: pairing added: controller \S{8}… \(admin\)")
            status, page = await web.get("/")
            assert pin not in page and f'id="qr-{SLUG}"' not in page
            assert (await web.get(f"/camera/{SLUG}/qr.svg"))[0] == 404
            _, api = await web.json("/api/status")
            demo = next(c for c in api["cameras"] if c["slug"] == SLUG)
            assert demo["paired"] is True and demo["setup_code"] is None and demo["setup_uri"] is None
            assert len(demo["controllers"]) == 1 and demo["controllers"][0]["admin"] is True

            # -- the hub enables recording ----------------------------------------------------
            ids = iids_by_type(await pairing.list_accessories_and_characteristics())
            selection = recording_selection()
            await enable_recording(pairing, ids, selection)
            await proc.wait_for_line(r"Demo Camera: prebuffer ready", timeout=40)
            status, health = await web.json("/healthz")
            assert status == 503 and health["cameras"]["Demo Camera"] == {"healthy": True, "reason": "ok"}, health
            # The card of the camera that is down says why, in words, and when ffmpeg tries again.
            _, page = await web.get("/camera/masked")
            assert re.search(r"(restarting|failed \(retrying) in \d+ s</span>: \S", page), page

            # -- 1. motion that no hub answers ------------------------------------------------
            async with http.get(f"{web.base}/motion?Demo%20Camera") as resp:
                assert resp.status == 200
            async with http.get(f"{web.base}/motion/reset?Demo%20Camera") as resp:
                assert resp.status == 200
            lonely = (await web.events())[0]
            assert lonely["kind"] == "motion" and lonely["source"] == "http" and lonely["recordings"] == []

            # -- 2. a normal close, the motion raised by the web action (password + CSRF) -------
            token = await web.token("motion")
            assert (await web.post("motion", {"csrf": token}))[0] == 403  # no password
            assert (await web.post("motion", {"csrf": token, "password": "wrong"}))[0] == 403
            assert (await web.post("motion", {"password": WEB_PASSWORD}))[0] == 403  # no CSRF token
            assert (await web.post("motion", {"csrf": token, "password": WEB_PASSWORD},
                                   {"Origin": "http://evil.example"}))[0] == 403
            assert (await web.get(f"/camera/{SLUG}/motion"))[0] == 405
            status, where = await web.post("motion", {"csrf": token, "password": WEB_PASSWORD})
            assert status == 303 and where.startswith(f"/camera/{SLUG}?done=motion")
            client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
            try:
                await client.hello()
                assert (await client.open(1)).body == {"status": 0}
                frags, closed = await client.collect(1, fragments=3, within=30)
                assert closed is None
                await client.close_stream(1, 0)
                # -- 3. the hub vanishes mid-stream (another motion, another stream) ------------
                await proc.wait_for_line(r"recording stream 1 ended .*NORMAL by hub, \d+ bytes sent")
            finally:
                await client.aclose()
            async with http.get(f"{web.base}/motion/reset?Demo%20Camera") as resp:
                assert resp.status == 200
            normal = await web.wait_event(lambda e: e["recordings"] and e["recordings"][0]["stream_id"] == 1
                                          and e["recordings"][0]["reason"] is not None)
            assert normal["source"] == "web" and normal["verdict"] == "the hub closed normally"
            rec = normal["recordings"][0]
            assert rec["closed_by"] == "hub" and rec["reason"] == "NORMAL" and rec["bytes_sent"] >= sum(
                len(f.data) for f in frags)
            # What the hub got: at least the two fragments it read, the 4 s prebuffer it asked for,
            # and a first byte well inside the hub's ~5 s patience.
            assert rec["fragments_sent"] >= 2 and 3.5 <= rec["prebuffer_s"] <= 8.5, rec
            assert rec["first_byte_s"] is not None and 0 <= rec["first_byte_s"] < 5, rec

            async with http.get(f"{web.base}/motion?Demo%20Camera") as resp:
                assert resp.status == 200
            client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
            assert (await client.hello()).header.status == 0
            assert (await client.open(2)).body == {"status": 0}
            await client.collect(2, fragments=2, within=30)
            client.writer.transport.abort()  # RST: the hub is gone
            await client.aclose()
            vanished = await web.wait_event(lambda e: e["recordings"] and e["recordings"][0]["stream_id"] == 2
                                            and e["recordings"][0]["reason"] is not None)
            assert vanished["recordings"][0]["closed_by"] == "connection"
            assert vanished["verdict"].startswith("the hub vanished")
            async with http.get(f"{web.base}/motion/reset?Demo%20Camera") as resp:
                assert resp.status == 200

            # -- 4. the camera is switched off in the Home app mid-stream ----------------------
            async with http.get(f"{web.base}/motion?Demo%20Camera") as resp:
                assert resp.status == 200
            client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
            try:
                await client.hello()
                assert (await client.open(3)).body == {"status": 0}
                await client.collect(3, fragments=2, within=30)
                assert await pairing.put_characteristics([(1, ids[HOMEKIT_CAMERA_ACTIVE], 0)]) == {}
                _, closed = await client.collect(3, within=15)
                assert closed is not None and closed.body == {"streamId": 3, "reason": 1}
            finally:
                await client.aclose()
            off = await web.wait_event(lambda e: e["recordings"] and e["recordings"][0]["stream_id"] == 3
                                       and e["recordings"][0]["reason"] is not None)
            assert off["recordings"][0]["reason"] == "NOT_ALLOWED" and off["recordings"][0]["closed_by"] == "accessory"
            assert off["verdict"].startswith("the camera was switched off")
            async with http.get(f"{web.base}/motion/reset?Demo%20Camera") as resp:
                assert resp.status == 200
            # /healthz: ffmpeg is not wanted while the camera is off, so that camera is healthy
            assert (await web.json("/healthz"))[1]["cameras"]["Demo Camera"]["healthy"] is True

            # The motion nobody answered now says so, in words.
            assert lonely["verdict"] == "waiting for a hub to open a recording"
            lonely = await web.wait_event(lambda e: e["id"] == lonely["id"] and e["verdict"] != lonely["verdict"],
                                          within=20)
            assert lonely["verdict"].startswith("no hub asked for this motion") and not lonely["recordings"]
            _, page = await web.get(f"/camera/{SLUG}")
            for words in ("the hub closed normally", "the hub vanished", "the camera was switched off",
                          "no hub asked for this motion: is the camera in Stream &amp; Allow Recording mode"):
                assert words in page

            # -- /metrics, parsed by prometheus_client ----------------------------------------
            _, text = await web.get("/metrics")
            samples = parse_metrics(text)
            assert metric(samples, "hksv_recordings_total", camera="Demo Camera", reason="NORMAL", closed_by="hub") == 1
            assert metric(samples, "hksv_recordings_total", camera="Demo Camera", closed_by="connection") == 1
            assert metric(samples, "hksv_recordings_total", camera="Demo Camera", reason="NOT_ALLOWED") == 1
            assert metric(samples, "hksv_motion_events_total", camera="Demo Camera", source="http") == 3
            assert metric(samples, "hksv_motion_events_total", camera="Demo Camera", source="web") == 1
            assert metric(samples, "hksv_recording_bytes_sent_total", camera="Demo Camera") >= rec["bytes_sent"]
            assert metric(samples, "hksv_fragments_total", camera="Demo Camera") >= 3
            assert metric(samples, "hksv_recording_first_byte_seconds_count", camera="Demo Camera") == 3
            assert metric(samples, "hksv_hap_sessions", camera="Demo Camera") >= 1
            assert metric(samples, "hksv_setup_code_failures", camera="Demo Camera") == 0  # reset by the pairing
            assert metric(samples, "hksv_paired", camera="Masked") == 0

            # -- the archive: the normal clip is listed, downloads, and decodes -----------------
            link = re.compile(rf'href="(/camera/{SLUG}/clips/[^"]+)"')
            for _ in range(75):  # the clip appears once the writer thread has renamed it
                if m := link.search((await web.get(f"/camera/{SLUG}"))[1]):
                    break
                await asyncio.sleep(0.2)
            assert m, "no clip listed on the camera page"
            async with http.get(web.base + m.group(1)) as resp:
                assert resp.status == 200 and resp.content_type == "video/mp4"
                clip = await resp.read()
            assert await decodes_cleanly(clip)
            assert (await web.get(f"/camera/{SLUG}/clips/2020-01-01/..%2F..%2Fstate.mp4"))[0] == 404

            # -- restart ffmpeg, then reset (asks for confirmation first) -----------------------
            mark = proc.mark()
            assert await pairing.put_characteristics([(1, ids[HOMEKIT_CAMERA_ACTIVE], 1)]) == {}
            await proc.wait_for_line(r"Demo Camera: prebuffer ready", timeout=40, after=mark)
            mark = proc.mark()
            assert (await web.post("restart", {"csrf": await web.token("restart"), "password": WEB_PASSWORD}))[0] == 303
            await proc.wait_for_line(r"Demo Camera: restarting ffmpeg: restart requested", after=mark)
            status, page = await web.post("reset", {"csrf": await web.token("reset"), "password": WEB_PASSWORD})
            assert status == 200 and "Yes, remove every pairing" in page
            _, api = await web.json("/api/status")
            assert next(c for c in api["cameras"] if c["slug"] == SLUG)["paired"] is True
            status, _ = await web.post("reset", {"csrf": await web.token("reset"), "password": WEB_PASSWORD,
                                                 "confirm": "yes"})
            assert status == 303
            await proc.wait_for_line(r"Demo Camera: pairing removed: controller \S{8}… \(admin\)")
        finally:
            await pairing.shutdown()
        # The removed controller comes back: its pair-verify fails, and that is counted.
        forgotten = second_session(pairing_data)
        try:
            with pytest.raises(Exception):  # noqa: B017 - aiohomekit's own authentication/connection errors
                await forgotten.list_accessories_and_characteristics()
        finally:
            await forgotten.shutdown()
        samples = parse_metrics((await web.get("/metrics"))[1])
        assert metric(samples, "hksv_pair_verify_failures_total", camera="Demo Camera") >= 1
        assert metric(samples, "hksv_paired", camera="Demo Camera") == 0
        assert (await web.get(f"/camera/{SLUG}/qr.svg"))[0] == 200

        # -- hostile HTTP: an over-long request, a connection flood ------------------------------
        reader, writer = await asyncio.open_connection("127.0.0.1", web_port)
        writer.write(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(100), 10)).startswith(b"HTTP/1.0 400")
        writer.close()
        idle = [await asyncio.open_connection("127.0.0.1", web_port) for _ in range(80)]
        try:
            async with asyncio.timeout(10):
                assert (await web.get("/healthz"))[0] in (200, 503)
        finally:
            for _, w in idle:
                w.close()

        # -- a browser: the QR code, a test motion, the event list ------------------------------
        png = await browse_status_page(web.base, pin, WEB_PASSWORD)
        if os.environ.get("HKSV_UPDATE_SCREENSHOT"):  # refresh the README's picture
            (DOCS / "status-page.png").write_bytes(png)

        # -- secrets: the camera password appears nowhere we serve, nor in the log ---------------
        for path in ("/", "/camera/masked", "/api/status", "/api/events", "/metrics", "/healthz"):
            status, body = await web.get(path)
            assert CAMERA_PASSWORD not in body and WEB_PASSWORD not in body, path
        _, api = await web.json("/api/status")
        masked = next(c for c in api["cameras"] if c["name"] == "Masked")
        assert "admin:***@" in masked["source"]
    assert await proc.terminate() == 0
    log = "".join(proc.lines)
    assert CAMERA_PASSWORD not in log and WEB_PASSWORD not in log
    assert "Traceback" not in log
    assert "bad HTTP request from a client" in log
    assert len(re.findall(r"Demo Camera: recording stream \d+ opened", log)) == 3
    assert json.dumps(log).count("wrong setup code") == 1
