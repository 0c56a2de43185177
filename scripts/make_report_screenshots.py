"""Render a report and save screenshots of its cohort page and one volume page.

    python scripts/make_report_screenshots.py EVAL_DIR
    python scripts/make_report_screenshots.py --fixture      # the tests' synthetic EVAL folder

Writes docs/figures/report_index.png and docs/figures/report_volume.png (or --out). Needs
playwright and a Chromium (default /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def build_fixture(root: Path) -> Path:
    """The hand-written EVAL folder of tests/report_fixture.py, at a screenshot-friendly size."""
    sys.path.insert(0, str(REPO / "tests"))
    from report_fixture import build_eval_dir

    return build_eval_dir(root, shape=(25, 248, 320))


def screenshot(index: Path, out: Path, chromium: str) -> None:
    """Screenshots of the cohort page and of the most anomalous volume's page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(index.as_uri())
        page.screenshot(path=str(out / "report_index.png"), full_page=True)
        href = page.locator("#volumes tbody a").first.get_attribute("href")
        page.goto((index.parent / href).as_uri())
        page.wait_for_function("document.getElementById('bscan-layer').complete")
        page.screenshot(path=str(out / "report_volume.png"), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", type=Path, help="an EVAL folder (octanogan evaluate)")
    parser.add_argument("--fixture", action="store_true", help="use the synthetic test fixture")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    if args.fixture == (args.eval_dir is not None):
        parser.error("give either EVAL_DIR or --fixture")

    from octanogan.report import render_report

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        eval_dir = build_fixture(Path(tmp)) if args.fixture else args.eval_dir
        index = render_report(eval_dir)
        screenshot(index, args.out, args.chromium)
    print(f"wrote {args.out / 'report_index.png'} and {args.out / 'report_volume.png'}")


if __name__ == "__main__":
    main()
