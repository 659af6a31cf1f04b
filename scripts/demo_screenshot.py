"""Save a screenshot of `agincolor demo` with a result on it, for the README (docs/images/demo.png).

    python scripts/demo_screenshot.py                              # the bundled model, example astronaut.jpg
    python scripts/demo_screenshot.py --example rocket.jpg --out /tmp/demo.png

Starts the demo on a free port of 127.0.0.1 (the bundled model), opens it in Debian's chromium (headless,
driven by playwright; needs the test extra and `apt-get install chromium`), clicks one of the page's
examples, waits for the result and saves a screenshot of the whole page. The file is written under a
temporary name beside the target and renamed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from agincolor.demo import BUNDLED_MODEL, Demo, example_images, launch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "demo.png", help="PNG to write")
    parser.add_argument("--example", default="astronaut.jpg", help="which of the page's examples to click")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in CSS pixels")
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="chromium executable")
    args = parser.parse_args(argv)
    names = [p.name for p in example_images()]
    if args.example not in names:
        parser.error(f"--example must be one of {', '.join(names)}, got {args.example!r}")
    if args.chromium is None:
        parser.error("no chromium found; apt-get install chromium, or give --chromium PATH")
    from playwright.sync_api import sync_playwright

    from agincolor import Colorizer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = Demo({BUNDLED_MODEL: Colorizer.from_pretrained()})
    app = launch(demo, port=port, block=False, quiet=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            page = browser.new_page(viewport={"width": args.width, "height": 800})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_text(args.example, exact=True).first.click()
            page.locator("#status").filter(has_text=f"Colorized {args.example}").wait_for()
            for shown in ("#gray img", "#colour img", "#attention img"):
                page.locator(shown).wait_for()
            page.wait_for_load_state("networkidle")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(tmp), full_page=True)
            browser.close()
        os.replace(tmp, args.out)
    finally:
        tmp.unlink(missing_ok=True)
        app.close()
        demo.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
