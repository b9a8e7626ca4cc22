"""A real browser on the status page: Debian's chromium, driven by Playwright (never a downloaded
browser). Headless, sandbox off (we run as root in CI), and every background network feature
off: the machine only reaches 127.0.0.1."""

from __future__ import annotations

import tempfile

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def browse_status_page(base: str, pin: str, password: str) -> bytes:
    """Overview: the unpaired camera's QR code and setup code. Camera page: raise a test motion
    with the form, land back on the page and find the new motion at the top of the list."""
    with tempfile.TemporaryDirectory(prefix="hksv-chromium-") as profile:
        async with async_playwright() as p:
            browser = await p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 430, "height": 1400}, device_scale_factor=1)
            try:
                page = browser.pages[0] if browser.pages else await browser.new_page()
                await page.goto(base + "/", wait_until="load")
                qr = page.locator("#qr-demo-camera svg")
                await qr.wait_for(state="visible", timeout=10_000)
                box = await qr.bounding_box()
                assert box is not None and box["width"] >= 100 and box["height"] >= 100
                assert pin in await page.locator("#qr-demo-camera .code").inner_text()

                await page.click("a[href='/camera/demo-camera']")
                before = await page.locator("#events > li.motion").count()
                await page.fill("form[action='/camera/demo-camera/motion'] input[name=password]", password)
                await page.click("#motion")
                await page.wait_for_url("**/camera/demo-camera?done=motion", timeout=10_000)
                assert "Test motion raised" in await page.locator("#notice").inner_text()
                first = page.locator("#events > li.motion").first
                assert "source: web" in await first.inner_text()
                assert await page.locator("#events > li.motion").count() == before + 1
                png = await page.screenshot(full_page=True)
            finally:
                await browser.close()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    return png
