"""`agincolor demo` in a real browser: Debian's chromium, headless, driven by playwright.

The demo runs in this process (a Gradio server in a thread, the bundled model) on a free port of
127.0.0.1. Every request the page makes is recorded; any that leaves 127.0.0.1 fails the test. Without
chromium, playwright or gradio the tests skip, saying what is missing; under CI (CI=true) they fail
instead, since `.ci/run` installs chromium and the test extra the rest.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from agincolor.demo import BUNDLED_MODEL, Demo, example_images
from agincolor.metrics import colorfulness

# The demo's own cap for these tests: the photo below fits, the "large" file does not.
UPLOAD_CAP_MB = 0.1
TIMEOUT_MS = 30_000

# Gradio 6.31 calls pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]


def _chromium() -> str | None:
    for name in (os.environ.get("AGINCOLOR_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import gradio  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"{err.name} is not installed (pip install -e '.[test]')"
    if _chromium() is None:
        return "no chromium executable (apt-get install chromium, or set AGINCOLOR_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def server() -> str:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser test must run under CI, but {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    from agincolor import Colorizer
    from agincolor.demo import launch

    with socket.socket() as probe:  # a port that is free now; the server takes it a moment later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = Demo({BUNDLED_MODEL: Colorizer.from_pretrained()}, max_upload_mb=UPLOAD_CAP_MB)
    app = launch(demo, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
        demo.close()


@pytest.fixture(scope="module")
def browser(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        # --no-sandbox: the sandbox refuses to run as root, as CI containers do; a container's /dev/shm is small.
        chromium = driver.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, server: str):
    """A fresh page on the demo, and the URL of every request it makes, checked at the end of each test."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server, wait_until="networkidle")
    yield page
    context.close()
    outside = sorted({url for url in requests if not _is_local(url)})
    assert not outside, f"the page requested {len(outside)} URLs outside 127.0.0.1: {outside[:10]}"
    assert requests, "no request was recorded at all"


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob"):  # made inside the page
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1"


def upload(page, path: Path) -> None:
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():  # a file is shown; the upload area comes back once it is cleared
        clear.click()
    page.locator("#upload input[type=file]").set_input_files(str(path))


def status_says(page, text: str) -> str:
    status = page.locator("#status")
    status.filter(has_text=text).wait_for()
    return status.inner_text()


def test_browser_upload_gives_a_colour_png_of_the_input_size(page, tmp_path):
    photo = next(p for p in example_images() if p.name == "chelsea.jpg")  # gray, 451x300, 31 kB
    upload(page, photo)
    message = status_says(page, "Colorized chelsea.jpg")
    assert "451x300" in message
    for shown in ("#gray img", "#colour img", "#attention img"):
        page.locator(shown).wait_for()
    with page.expect_download() as download_info:
        page.locator("#download").click()
    download = download_info.value
    assert download.suggested_filename == "chelsea_colour.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with Image.open(saved) as result, Image.open(photo) as original:
        assert result.format == "PNG" and result.size == original.size
        assert colorfulness(np.asarray(result.convert("RGB"))) > 5
    page.locator("#size").get_by_label("256").check()  # the working-size choice reruns the photo
    status_says(page, "working size 256")


def test_browser_colour_photo_gets_the_warning_and_the_recolor_toggle_works(page, tmp_path):
    photo = tmp_path / "slide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)).save(photo)
    upload(page, photo)
    status_says(page, "slide.png already has colour")
    page.locator("#recolor").get_by_role("checkbox").check()
    assert "64x48" in status_says(page, "own colours replaced")


def test_browser_corrupt_file_is_a_message_and_the_server_goes_on(page, tmp_path):
    corrupt = tmp_path / "damaged.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4)
    upload(page, corrupt)
    message = status_says(page, "damaged.jpg is not an image agincolor can read")
    assert "Traceback" not in page.content() and "Error" not in message
    photo = next(p for p in example_images() if p.name == "chelsea.jpg")
    upload(page, photo)  # the same server still colorizes
    status_says(page, "Colorized chelsea.jpg")


def test_browser_file_over_the_upload_cap_is_refused_on_the_page(page, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(np.random.default_rng(0).bytes(int(UPLOAD_CAP_MB * 1_000_000) + 50_000))
    upload(page, big)
    # Gradio refuses it before it reaches the server, in a message of its own on the page.
    refusal = page.get_by_text("exceed the maximum allowed size", exact=False).first
    refusal.wait_for()
    assert "big.png" in refusal.inner_text()
    assert "Traceback" not in page.content()
    assert "Colorized" not in page.locator("#status").inner_text()


def test_browser_video_tab_colorizes_an_uploaded_clip(page, tmp_path):
    av = pytest.importorskip("av")
    clip = tmp_path / "reel.mp4"  # 6 gray frames, 64x48, a few kB
    out = av.open(str(clip), "w")
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    levels = np.random.default_rng(1).integers(0, 256, size=(48, 70), dtype=np.uint8)
    for t in range(6):
        gray = np.repeat(levels[:, t : t + 64, None], 3, axis=2)
        for packet in stream.encode(av.VideoFrame.from_ndarray(gray, format="rgb24").reformat(format="yuv420p")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    status = page.locator("#video-status")
    status.filter(has_text="Colorized reel.mp4").wait_for()
    assert "6 frames" in status.inner_text()
    page.locator("#video-colour video").wait_for()
    with page.expect_download() as download_info:
        page.locator("#video-download").click()
    assert download_info.value.suggested_filename == "reel_colour.mp4"
    assert "Traceback" not in page.content()
