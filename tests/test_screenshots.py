"""`mailer preview --screenshot`: real headless Chromium, images from a local server."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops

from mailer.cli import main
from tests.conftest import REPO
from tests.editor_support import ARTIFACTS, LocalSite, editable_sources, png_bytes, serve_site

pytestmark = pytest.mark.browser


def test_screenshots_desktop_mobile_and_images_blocked(tmp_path, sqlite_url):
    content, _ = editable_sources(tmp_path)
    site = LocalSite(routes={"/foto.png": (200, "image/png", png_bytes(1104, 620))})
    out = ARTIFACTS / "screenshots"
    with serve_site(site):
        for article in (content / "magazine").glob("*.md"):
            article.write_text(re.sub(r"(?m)^image: .*$", f"image: {site.url('/foto.png')}",
                                      article.read_text()))
        env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
               "MAILER_NOW": "2026-12-03T09:00", "MAILER_CONTENT_DIR": str(content)}
        runner, config = CliRunner(), ["--config", str(REPO / "mailer.toml")]
        assert runner.invoke(main, [*config, "content", "sync"], env=env).exit_code == 0
        result = runner.invoke(main, [*config, "preview", "--screenshot", "--out", str(out)],
                               env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    paths = {name: out / f"issue-{name}.png" for name in ("desktop", "mobile", "no-images")}
    for path in paths.values():
        assert str(path) in result.output
    shots = {name: Image.open(path) for name, path in paths.items()}
    assert shots["desktop"].width == 800 and shots["no-images"].width == 800
    assert shots["mobile"].width == 375
    assert shots["mobile"].height > shots["desktop"].height > 900  # full page, narrower = taller
    assert "/foto.png" in site.hits  # images did load for the normal views
    blocked_diff = ImageChops.difference(shots["desktop"].convert("RGB"),
                                         shots["no-images"].convert("RGB"))
    assert blocked_diff.getbbox() is not None
    # The photo's colour appears with images on, and nowhere once they are blocked.
    photo = (200, 60, 40)
    assert photo in colours(shots["desktop"]) and photo not in colours(shots["no-images"])


def colours(image: Image.Image) -> set[tuple[int, int, int]]:
    return {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 24)}
