"""The web server's limits over real sockets on 127.0.0.1: a clip download in progress goes on
to its last byte while 200 slow clients flood the server; the ones past the connection limit are
answered 503 with Retry-After, the admitted ones that never finish their request head are closed
at the header timeout, and then the server serves again."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import aiohttp

from sidecar.archive import ClipArchive
from sidecar.web import WebServer
from sidecar.web.server import HEADER_TIMEOUT_S, MAX_CONNECTIONS, RETRY_AFTER_S

SLOW_CLIENTS = 200
DAY = 86_400.0


async def _make_clip(path: Path) -> None:
    """A real H.264 MP4 of several megabytes (noise at a high bitrate makes it big in a short encode)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15",
        "-vf", "noise=alls=40:allf=t", "-t", "2",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "24M", "-movflags", "+faststart", "-y", str(path))
    assert await proc.wait() == 0


async def _slow_client(port: int, outcomes: list[tuple[str, float]]) -> None:
    """Connect, send a request head one byte at a time and never finish it; record how the
    server ended the connection ("503" with Retry-After, or "closed") and after how long."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()  # connected (a SYN the full accept queue dropped is retried by the kernel)
    got = b""
    outcome = "open"
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        async with asyncio.timeout(HEADER_TIMEOUT_S + 5):
            while True:
                try:
                    writer.write(b"X")
                    await writer.drain()
                except (ConnectionError, RuntimeError):
                    pass
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 0.5)
                except TimeoutError:
                    continue
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    break
                got += chunk
        if got.startswith(b"HTTP/1.1 503 ") and f"Retry-After: {RETRY_AFTER_S}\r\n".encode() in got:
            outcome = "503"
        elif got == b"":
            outcome = "closed"
        else:
            outcome = "other: " + got[:60].decode(errors="replace")
    finally:
        writer.close()
        outcomes.append((outcome, time.monotonic() - started))


async def test_a_clip_download_finishes_while_200_slow_clients_flood_the_server(executor_joined: None,
                                                                                 tmp_path: Path) -> None:
    root = tmp_path / "archive"
    (root / "door" / "2026-01-02").mkdir(parents=True)
    clip = root / "door" / "2026-01-02" / "120000.mp4"
    await _make_clip(clip)
    expected = clip.read_bytes()
    assert len(expected) > 4_000_000
    archive = ClipArchive(root, max_age_s=365 * DAY * 100, max_bytes=1 << 40)
    archive.start()
    server = WebServer(lambda: [], host="127.0.0.1", port=0, archive=archive)
    await server.start()
    try:
        async with asyncio.timeout(10):
            while archive.clip_path("door", "2026-01-02", "120000.mp4") is None:  # noqa: ASYNC110 - its first scan
                await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{server.port}"
        flood_started = asyncio.Event()
        outcomes: list[tuple[str, float]] = []

        async def download() -> tuple[bytes, float]:
            body = bytearray()
            url = f"{base}/camera/door/clips/2026-01-02/120000.mp4"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
                flood_started.set()
                while chunk := await resp.content.read(64 * 1024):
                    body += chunk
                    await asyncio.sleep(0.04)  # a slow reader: the download spans the flood
                return bytes(body), time.monotonic()

        fetch = asyncio.create_task(download())
        await flood_started.wait()
        await asyncio.sleep(0.1)
        flood_start = time.monotonic()
        clients = []
        for i in range(SLOW_CLIENTS):  # a few per turn of the loop: the debug loop records where each task began
            clients.append(asyncio.create_task(_slow_client(server.port, outcomes)))
            if i % 10 == 9:
                await asyncio.sleep(0)
        await asyncio.gather(*clients)
        body, finished = await fetch

        # The download was never closed to make room: every byte arrived, long after the flood began.
        assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
        refused = [t for o, t in outcomes if o == "503"]
        closed = [t for o, t in outcomes if o == "closed"]
        assert len(refused) + len(closed) == SLOW_CLIENTS, [o for o, _ in outcomes if o not in ("503", "closed")]
        # The download holds one slot; the slow clients fill the rest and the others are refused.
        assert len(closed) <= MAX_CONNECTIONS - 1
        assert len(refused) >= SLOW_CLIENTS - (MAX_CONNECTIONS - 1)
        assert max(refused) < 2.0  # answered at once (plus the client's own polling), not left waiting
        assert all(HEADER_TIMEOUT_S - 0.5 <= t <= HEADER_TIMEOUT_S + 4 for t in closed), closed
        assert finished - flood_start > 1.0  # it went on while the slow clients held the other slots

        # The flood is over: the server serves again.
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
    finally:
        await server.stop()
        await archive.stop()
