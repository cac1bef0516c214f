"""Online checks of a rendered issue: are its links reachable, are its images the right size.

Used by `mailer lint --check-links` only: everything else in lint works offline.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from lxml.html import HtmlElement
from PIL import Image, UnidentifiedImageError

from mailer.render.dom import element_label, elements
from mailer.render.lint import ERROR, WARNING, Finding

USER_AGENT = "WeerbaarNL-mailer linkcheck (+https://www.platformjep.example.nl)"
RETRY_WITH_GET = {403, 404, 405, 501}  # servers that refuse or mishandle HEAD
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_HEAVY_BYTES = 200 * 1024
OVERSIZE_FACTOR = 3  # 2x covers high-density screens; beyond 3x is wasted download


@dataclass(frozen=True)
class LinkStatus:
    """What fetching one URL gave: an HTTP status, or an error text."""

    url: str
    status: int | None
    error: str = ""


def check_links(root: HtmlElement, timeout: float, skip: Iterable[str] = ()) -> list[Finding]:
    """An error per http(s) link that does not answer with a success (after redirects)."""
    skipped = set(skip)
    anchors: dict[str, str] = {}
    for a in (el for el in elements(root) if el.tag == "a"):
        href = (a.get("href") or "").strip()
        if href.startswith(("http://", "https://")) and href not in skipped:
            anchors.setdefault(href, element_label(a))
    with requests.Session() as session, ThreadPoolExecutor(max_workers=8) as pool:
        session.headers["User-Agent"] = USER_AGENT
        results = list(pool.map(lambda url: fetch_status(session, url, timeout), anchors))
    return [Finding(ERROR, "link-unreachable", describe(r), anchors[r.url])
            for r in results if r.status is None or r.status >= 400]


def fetch_status(session: requests.Session, url: str, timeout: float) -> LinkStatus:
    """HEAD the URL, falling back to GET when HEAD is refused or fails."""
    try:
        response = session.head(url, timeout=timeout, allow_redirects=True)
        if response.status_code in RETRY_WITH_GET or response.status_code >= 500:
            response = session.get(url, timeout=timeout, allow_redirects=True, stream=True)
            response.close()
        return LinkStatus(url, response.status_code)
    except requests.Timeout:
        return LinkStatus(url, None, f"no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return LinkStatus(url, None, type(exc).__name__ + ": " + str(exc)[:160])


def describe(result: LinkStatus) -> str:
    """One line on why a link failed."""
    if result.status is not None:
        return f"{result.url} answered HTTP {result.status}"
    return f"{result.url} is unreachable: {result.error}"


def check_image_files(root: HtmlElement, timeout: float) -> list[Finding]:
    """Compare each image's pixel size and weight with the width it is shown at."""
    images = [el for el in elements(root) if el.tag == "img"
              and (el.get("src") or "").startswith(("http://", "https://"))]
    with requests.Session() as session, ThreadPoolExecutor(max_workers=8) as pool:
        session.headers["User-Agent"] = USER_AGENT
        return [f for found in pool.map(lambda img: image_findings(session, img, timeout), images)
                for f in found]


def image_findings(session: requests.Session, img: HtmlElement, timeout: float) -> list[Finding]:
    """Findings for one image file: unreachable, unreadable, blurry, oversized or heavy."""
    label, src = element_label(img), img.get("src")
    try:
        response = session.get(src, timeout=timeout, stream=True)
        data = response.raw.read(IMAGE_MAX_BYTES + 1, decode_content=True)
        response.close()
    except requests.RequestException as exc:
        return [Finding(ERROR, "image-unreachable", f"{src} is unreachable: {exc}", label)]
    if response.status_code >= 400:
        return [Finding(ERROR, "image-unreachable", f"{src} answered HTTP "
                        f"{response.status_code}", label)]
    try:
        natural_width = Image.open(io.BytesIO(data)).size[0]
    except (UnidentifiedImageError, OSError):
        return [Finding(ERROR, "image-file", f"{src} is not a readable image", label)]
    return size_findings(natural_width, len(data), img.get("width") or "", label)


def size_findings(natural: int, size: int, width_attr: str, label: str) -> list[Finding]:
    """Warnings when the file is smaller than shown (blurry), far larger, or heavy."""
    findings = []
    shown = int(width_attr) if width_attr.isdigit() else None
    if shown and natural < shown:
        findings.append(Finding(WARNING, "image-size", f"image is {natural} px wide but shown at "
                                f"{shown} px: it will look blurry (use {2 * shown} px)", label))
    elif shown and natural > OVERSIZE_FACTOR * shown:
        findings.append(Finding(WARNING, "image-size", f"image is {natural} px wide but shown at "
                                f"{shown} px: scale it to {2 * shown} px", label))
    if size > IMAGE_HEAVY_BYTES:
        findings.append(Finding(WARNING, "image-weight", f"image file is {size // 1024} KB; keep "
                                f"images under {IMAGE_HEAVY_BYTES // 1024} KB", label))
    return findings
