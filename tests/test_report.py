"""The clinician HTML report: rendering, escaping, privacy, atomic re-render, size, regions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from report_fixture import (
    BIRTH_DATE,
    INJECTED_ID,
    PATIENT_NAME,
    QC_BSCAN,
    QC_VOLUME,
    VOLUMES,
    build_eval_dir,
)

from octanogan.errors import InputError
from octanogan.fsutil import safe_name
from octanogan.io import affine_from_spacing
from octanogan.report import render_report
from octanogan.report.regions import flagged_regions

MB = 1024 * 1024


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered report of the tiny hand-written EVAL folder; returns report/index.html."""
    return render_report(build_eval_dir(tmp_path_factory.mktemp("report")))


def _pages(index: Path) -> list[Path]:
    return [index, *sorted((index.parent / "volumes").glob("*.html"))]


def test_render_writes_cohort_and_volume_pages(rendered: Path) -> None:
    html = rendered.read_text()
    assert rendered.name == "index.html"
    for volume_id, *_ in VOLUMES:
        page = rendered.parent / "volumes" / f"{safe_name(volume_id)}.html"
        assert page.is_file()
        assert f'href="volumes/{safe_name(volume_id)}.html"' in html
    assert "0.93 <span class=\"ci\">(0.88–0.97)</span>" in html  # value with its 95 % CI
    assert "Research use only" in html and "not a diagnosis" in html
    for level in ("Volume level", "B-scan level", "Patch level", "Voxel level"):
        assert level in html
    assert html.count("<svg") == 4 * 2 + 2  # ROC + PR per level, two score distributions


def test_volume_page_references_existing_images(rendered: Path) -> None:
    for page in _pages(rendered)[1:]:
        sources = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())
        assert len(sources) >= 3
        for src in sources:
            assert (page.parent / src).stat().st_size > 0
            assert not src.startswith(("http:", "https:", "//"))


def test_quality_control_and_export_fill_are_shown(rendered: Path) -> None:
    from PIL import Image

    page = (rendered.parent / "volumes" / f"{safe_name(QC_VOLUME)}.html").read_text()
    assert "1 of 6 B-scans fail" in page and 'id="fill-note"' in page
    viewer = json.loads(re.search(r'id="viewer-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert viewer["qc"][QC_BSCAN] == ("boundaries mostly bridged, not measured; "
                                      "retina hardly brighter than the noise")
    assert sum(bool(text) for text in viewer["qc"]) == 1
    clean = (rendered.parent / "volumes" / f"{safe_name('DISEASED-002')}.html").read_text()
    assert "all B-scans pass" in clean and 'id="fill-note"' not in clean
    index = rendered.read_text()
    assert '<span class="flag qc">1</span>' in index
    # the wedge (top-left quarter of every B-scan) is flat grey in the B-scan images
    sprite = np.asarray(Image.open(rendered.parent / "volumes" / safe_name(QC_VOLUME) / "bscans.jpg"))
    tile = viewer["sprite"]
    wedge = sprite[2 : 64 // 4 - 2, 2 : 96 // 4 - 2]  # tile 0; JPEG blurs the wedge's edge
    assert tile["tile_w"] >= 96 and abs(float(wedge.mean()) - 128) < 6 and wedge.std() < 6


def test_flagged_regions_listed_for_diseased_volume(rendered: Path) -> None:
    page = (rendered.parent / "volumes" / f"{safe_name('DISEASED-002')}.html").read_text()
    assert "<table class=\"regions\">" in page
    assert "IRF" in page and "HRF" in page  # contour legend names the markers


def test_identifier_is_escaped_everywhere(rendered: Path) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in _pages(rendered):
        html = page.read_text()
        assert INJECTED_ID not in html
        assert "alert(1)" not in html or escaped in html or "\\u003c" in html
    page = (rendered.parent / "volumes" / f"{safe_name(INJECTED_ID)}.html").read_text()
    assert f'<h1 id="volume-id">{escaped}</h1>' in page
    data = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', page, re.S)
    assert data and "<" not in data.group(1)
    json.loads(data.group(1))


def test_no_identifying_metadata_on_any_page(rendered: Path) -> None:
    for page in _pages(rendered):
        html = page.read_text()
        for secret in (PATIENT_NAME, BIRTH_DATE, "DOE_JANE", "patient_name", "birth_date"):
            assert secret not in html, f"{secret!r} leaked into {page.name}"


def test_rerender_failure_leaves_old_report(tmp_path: Path) -> None:
    eval_dir = build_eval_dir(tmp_path)
    index = render_report(eval_dir)
    before = {p: p.read_bytes() for p in index.parent.rglob("*") if p.is_file()}
    victim = next((tmp_path / "scores" / "maps").glob("DISEASED-002_anomaly.nii.gz"))
    victim.write_bytes(b"not a nifti file")
    with pytest.raises(InputError, match="DISEASED-002_anomaly"):
        render_report(eval_dir)
    after = {p: p.read_bytes() for p in index.parent.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in eval_dir.iterdir() if p.name.startswith(".report")] == []


def test_minimal_evaluation_json_still_renders(tmp_path: Path) -> None:
    eval_dir = build_eval_dir(tmp_path)
    info = json.loads((eval_dir / "evaluation.json").read_text())
    minimal = {"scores_dir": info["scores_dir"], "markers": info["markers"]}
    (eval_dir / "evaluation.json").write_text(json.dumps(minimal))
    (eval_dir / "curves.json").unlink()
    index = render_report(eval_dir)
    page = (index.parent / "volumes" / f"{safe_name('DISEASED-002')}.html").read_text()
    assert "holds no voxel threshold" in page
    assert "<svg" in index.read_text()  # distributions still drawn, without threshold lines


def test_missing_scores_folder_is_a_clear_error(tmp_path: Path) -> None:
    eval_dir = build_eval_dir(tmp_path)
    info = json.loads((eval_dir / "evaluation.json").read_text())
    info["scores_dir"] = str(tmp_path / "nowhere")
    (eval_dir / "evaluation.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="scores folder"):
        render_report(eval_dir)


def test_page_size_bound_for_default_volume_size(tmp_path: Path) -> None:
    """Full-size B-scans (496 x 512): a 49-B-scan page, extrapolated, stays under 20 MB."""
    n_bscans = 4
    index = render_report(build_eval_dir(tmp_path, shape=(n_bscans, 496, 512)))
    page = index.parent / "volumes" / f"{safe_name(INJECTED_ID)}.html"
    folder = page.with_suffix("")
    per_bscan = sum(f.stat().st_size for f in folder.iterdir() if f.name != "enface.png")
    fixed = page.stat().st_size + (folder / "enface.png").stat().st_size
    assert fixed + per_bscan / n_bscans * 49 < 20 * MB


def test_flagged_regions_sizes_ranges_and_order() -> None:
    anomaly = np.zeros((5, 20, 30), np.float32)
    anomaly[1:4, 2:6, 3:8] = 1.0  # 3 x 4 x 5 = 60 voxels
    anomaly[2, 9, 20] = 5.0  # peak of the second region
    anomaly[2, 10:12, 20] = 2.0  # 3 voxels with the peak
    anomaly[0, 18, 28] = 3.0  # 1 voxel, below min size
    affine = affine_from_spacing((0.12, 0.004, 0.01))
    regions, n_found = flagged_regions(anomaly, 0.5, affine, top_n=5, min_voxels=2)
    assert n_found == 3
    assert [r.n_voxels for r in regions] == [60, 3]
    big, small = regions
    assert (big.bscans, big.rows, big.columns) == ((1, 3), (2, 5), (3, 7))
    assert big.volume_mm3 == pytest.approx(60 * 0.12 * 0.004 * 0.01)
    assert (small.peak, small.peak_bscan, small.rows) == (5.0, 2, (9, 11))
    mask = np.zeros_like(anomaly, bool)
    mask[2] = True
    inside, _ = flagged_regions(anomaly, 0.5, affine, mask=mask)
    assert [r.bscans for r in inside] == [(2, 2), (2, 2)]


def test_cli_report_renders_and_reports_errors(rendered: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from octanogan.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["report", str(rendered.parent.parent)])
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "evaluation folder not found" in result.output


def test_cohort_page_names_the_scoring_mode_and_its_settings(rendered: Path) -> None:
    html = rendered.read_text()
    summary = html.split("Scoring mode")[1].split("Volumes")[0]
    assert "iterative" in summary and "steps 500" in summary and "lam 0.1" in summary
    assert "hybrid_steps" not in summary
