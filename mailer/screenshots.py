"""PNG screenshots of a rendered issue in headless Chromium: desktop, mobile, images blocked.

Uses the system's Chromium (Debian's /usr/bin/chromium) through Playwright; no browser is
ever downloaded. "Images blocked" aborts every image request, as Outlook for Windows and
Thunderbird do by default, to show whether the mail still makes sense without pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOAD_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class View:
    """One way of looking at the mail: a viewport width and whether images load."""

    name: str
    width: int
    height: int
    images: bool = True


# 800 px leaves a margin around the 600 px content column, like a desktop mail client;
# 375 px is the CSS width of common phones, below MJML's 480 px mobile breakpoint.
VIEWS = (View("desktop", 800, 900), View("mobile", 375, 812), View("no-images", 800, 900, False))


def take_screenshots(html: str, folder: Path, chromium: str, stem: str = "issue",
                     views: tuple[View, ...] = VIEWS) -> dict[str, Path]:
    """Write one full-page PNG per view into folder; returns {view name: path}."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for view in views:
                paths[view.name] = folder / f"{stem}-{view.name}.png"
                shoot(browser, html, view, paths[view.name])
        finally:
            browser.close()
    return paths


def shoot(browser, html: str, view: View, path: Path) -> None:
    """Render the HTML in a fresh page for one view and save a full-page screenshot."""
    context = browser.new_context(viewport={"width": view.width, "height": view.height},
                                  device_scale_factor=1, is_mobile=view.width < 480,
                                  has_touch=view.width < 480)
    try:
        page = context.new_page()
        page.set_default_timeout(LOAD_TIMEOUT_MS)
        if not view.images:
            page.route("**/*", block_images)
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(path), full_page=True)
    finally:
        context.close()


def block_images(route) -> None:
    """Abort image requests; let everything else through."""
    if route.request.resource_type == "image":
        route.abort("blockedbyclient")
    else:
        route.continue_()
