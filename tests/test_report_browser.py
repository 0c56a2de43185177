"""The report in real headless Chromium, opened from disk: offline, decodes, and interactive."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from playwright import sync_api
from report_fixture import INJECTED_ID, QC_BSCAN, build_eval_dir

from octanogan.fsutil import safe_name
from octanogan.report import render_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} not installed"),
]


class Visit:
    """An open page with everything it did recorded: requests, console errors, dialogs."""

    def __init__(self, browser, url: str) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shown(self) -> int:
        """The B-scan the viewer shows, 0-based, from its visible text."""
        return int(self.page.inner_text("#bscan-index")) - 1


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_report(build_eval_dir(tmp_path_factory.mktemp("browser"), shape=(6, 64, 96)))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def volume_page(browser, report: Path) -> Iterator[Visit]:
    page = report.parent / "volumes" / f"{safe_name(INJECTED_ID)}.html"
    visit = Visit(browser, page.as_uri())
    yield visit
    visit.page.close()


def _pages(report: Path) -> list[Path]:
    return [report, *sorted((report.parent / "volumes").glob("*.html"))]


def test_pages_are_offline_error_free_and_images_decode(browser, report: Path) -> None:
    for path in _pages(report):
        visit = Visit(browser, path.as_uri())
        natural = visit.page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])")
        if path != report:
            assert natural, f"{path.name} shows no images"
        for src, width in natural:
            assert width and width > 0, f"{src} did not decode on {path.name}"
        assert visit.errors == [], f"console errors on {path.name}: {visit.errors}"
        assert visit.requests and all(u.startswith("file://") for u in visit.requests), \
            f"{path.name} requested {[u for u in visit.requests if not u.startswith('file://')]}"
        assert visit.dialogs == []
        visit.page.close()


def test_injected_id_shows_as_text_without_dialog(volume_page: Visit) -> None:
    assert volume_page.page.inner_text("#volume-id") == INJECTED_ID
    assert volume_page.page.title().startswith(INJECTED_ID)
    assert volume_page.dialogs == []


def test_cohort_links_open_volume_pages(browser, report: Path) -> None:
    visit = Visit(browser, report.as_uri())
    visit.page.locator("#volumes").get_by_role("link", name=INJECTED_ID, exact=True).click()
    visit.page.wait_for_load_state("load")
    assert visit.page.url.split("#")[0].endswith(f"volumes/{safe_name(INJECTED_ID)}.html")
    assert visit.dialogs == [] and visit.errors == []
    visit.page.close()


def _sprite_shift(visit: Visit) -> str:
    return visit.page.eval_on_selector("#bscan-layer", "img => img.style.transform")


def test_slider_and_arrow_keys_change_bscan(volume_page: Visit) -> None:
    page = volume_page.page
    page.locator("#bscan-slider").fill("2")
    assert volume_page.shown() == 2
    shift_at_2 = _sprite_shift(volume_page)
    page.locator("#volume-id").click()  # focus off the slider: the page handles the keys
    page.keyboard.press("ArrowRight")
    assert volume_page.shown() == 3
    assert _sprite_shift(volume_page) != shift_at_2
    assert page.get_attribute("#viewer", "data-bscan") == "3"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert volume_page.shown() == 1
    page.locator("#bscan-slider").focus()
    page.keyboard.press("ArrowDown")  # on the slider too, one press is one B-scan
    assert volume_page.shown() == 2
    assert page.input_value("#bscan-slider") == "2"


def test_qc_flag_follows_the_shown_bscan(volume_page: Visit) -> None:
    page = volume_page.page
    page.locator("#bscan-slider").fill(str(QC_BSCAN))
    assert page.is_visible("#bscan-qc")
    assert "boundaries mostly bridged" in page.inner_text("#bscan-qc-text")
    page.locator("#bscan-slider").fill(str(QC_BSCAN + 1))
    assert not page.is_visible("#bscan-qc")
    assert volume_page.errors == []


def test_visible_tile_matches_shown_bscan(volume_page: Visit) -> None:
    """The sprite is shifted so that the viewport shows exactly tile k."""
    page = volume_page.page
    for k in (0, 4, 5):
        page.locator("#bscan-slider").fill(str(k))
        offset = page.evaluate("""() => {
            const port = document.getElementById('viewport').getBoundingClientRect();
            const img = document.getElementById('bscan-layer').getBoundingClientRect();
            const grid = JSON.parse(document.getElementById('viewer-data').textContent).sprite;
            const scale = port.width / grid.width;
            return [(port.left - img.left) / scale / grid.tile_w,
                    (port.top - img.top) / scale / grid.tile_h, grid.cols];
        }""")
        cols = offset[2]
        assert offset[0] == pytest.approx(k % cols, abs=0.01)
        assert offset[1] == pytest.approx(k // cols, abs=0.01)


def test_overlay_toggles_and_opacity(volume_page: Visit) -> None:
    page = volume_page.page
    assert page.is_visible("#heat-layer")
    page.uncheck("#heat-toggle")
    assert page.is_hidden("#heat-layer")
    page.check("#heat-toggle")
    assert page.is_visible("#heat-layer")
    page.locator("#heat-opacity").fill("30")
    assert page.eval_on_selector("#heat-layer", "e => e.style.opacity") == "0.3"
    assert page.is_visible("#contour-layer")
    page.uncheck("#contour-toggle")
    assert page.is_hidden("#contour-layer")


def test_darker_map_has_its_own_colours_and_legend(volume_page: Visit) -> None:
    """Hypo-reflective maps are drawn in a cold ramp, named in the legend, not in the heat colours."""
    from PIL import Image

    page = volume_page.page
    assert page.inner_text("#map-title") == "Darker than expected"
    assert "fluid" in page.inner_text("#map-note")
    assert "cold" in page.get_attribute(".ramp-bar", "class")
    source = page.get_attribute("#heat-layer", "src")
    with Image.open(Path(unquote(urlparse(page.url).path)).parent / source) as heat:
        palette = np.asarray(heat.getpalette()[3:3 * 20]).reshape(-1, 3)
    assert (palette[:, 2] > palette[:, 0]).all()  # blue over red on every drawn level


def test_enface_click_jumps_to_bscan(volume_page: Visit) -> None:
    page = volume_page.page
    box = page.locator("#enface").bounding_box()
    n = int(page.get_attribute("#bscan-slider", "max")) + 1
    for k in (0, 4, 2, n - 1):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + (k + 0.5) * box["height"] / n)
        assert volume_page.shown() == k
        line = page.locator("#enface-line").bounding_box()
        assert abs(line["y"] - (box["y"] + (k + 0.5) * box["height"] / n)) < 3


def test_ranked_bscans_and_regions_jump(volume_page: Visit) -> None:
    page = volume_page.page
    link = page.locator("#bscan-list a").nth(1)
    target = int(link.get_attribute("data-bscan"))
    link.click()
    page.wait_for_function(f"document.getElementById('viewer').dataset.bscan === '{target}'")
    assert volume_page.shown() == target
    region = page.locator("table.regions a").first
    first_bscan = int(re.match(r"#bscan-(\d+)", region.get_attribute("href")).group(1)) - 1
    region.click()
    page.wait_for_function(f"document.getElementById('viewer').dataset.bscan === '{first_bscan}'")
    assert volume_page.errors == []
