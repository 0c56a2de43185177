"""Open every page of a report in headless Chromium (shared by the end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def page_problems(report: Path) -> dict[str, list[str]]:
    """Console errors and undecoded images of every page of a report, in headless Chromium."""
    from playwright import sync_api  # a dev dependency: missing, the test fails rather than skips

    problems: dict[str, list[str]] = {}
    pages = sorted(report.rglob("*.html"))
    assert pages, f"{report} holds no pages"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--headless", "--disable-gpu"])
        for path in pages:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda msg, errors=errors: msg.type == "error" and errors.append(msg.text))
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            broken = page.eval_on_selector_all(
                "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
            if errors or broken:
                problems[path.name] = errors + [f"image not decoded: {src[:80]}" for src in broken]
            page.close()
        browser.close()
    return problems
