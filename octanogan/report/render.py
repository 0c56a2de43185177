"""Render ``EVAL/report/``: the cohort page and one page per volume, written atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from octanogan import __version__
from octanogan.errors import InputError
from octanogan.outputs.folder import atomic_dir
from octanogan.report import cohort
from octanogan.report.inputs import Evaluation, load_evaluation
from octanogan.report.model_card import NOTICE, ModelCard, model_card
from octanogan.report.volume import build_volume_page

RESEARCH_NOTE = NOTICE
MODEL_CARD = "model_card.html"


def _static(name: str) -> str:
    return resources.files("octanogan.report").joinpath("static", name).read_text("utf-8")


def environment() -> jinja2.Environment:
    """Jinja2 with autoescaping on, undefined names an error, and the report's assets."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("octanogan.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        css=_static("report.css"), viewer_js=_static("viewer.js"), version=__version__,
        research_note=RESEARCH_NOTE, fmt=cohort.fmt, fmt_score=cohort.fmt_score,
    )
    return env


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def render_evaluation(ev: Evaluation, folder: Path,
                      progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> None:
    """Write the whole report for ``ev`` into ``folder`` (which the caller makes atomic)."""
    env = environment()
    hrefs = {e.volume_id: f"volumes/{e.safe_id}.html" for e in ev.volumes}
    card = _model_card(ev)
    common: dict[str, Any] = {"generated": str(ev.info.get("date", "")),
                              "prediction": ev.info.get("kind") == "prediction"}
    if card is not None:
        _write(folder / MODEL_CARD, env.get_template("model_card.html").render(
            card=card, model_card_href=MODEL_CARD, **common))
    ranked = cohort.ranking(ev, hrefs)
    for item in (progress(ranked) if progress else ranked):
        page = build_volume_page(ev, item.entry, item.rank, folder / "volumes")
        _write(folder / "volumes" / f"{item.entry.safe_id}.html",
               env.get_template("volume.html").render(
                   page=page, model_card_href=card and f"../{MODEL_CARD}", **common))
    _write(folder / "index.html", env.get_template("index.html").render(
        provenance=cohort.provenance(ev), tables=cohort.metric_tables(ev), ranked=ranked,
        distributions=cohort.distributions(ev, hrefs), markers=ev.markers,
        thresholds=ev.info.get("thresholds") or {}, threshold_source=cohort.threshold_source(ev),
        n_bootstrap=(ev.info.get("settings") or {}).get("n_bootstrap"),
        model_card_href=card and MODEL_CARD, **common))


def _model_card(ev: Evaluation) -> ModelCard | None:
    """The model card of the run behind ``ev``, when its run folder can still be read."""
    run_dir = (ev.info.get("run") or {}).get("run_dir")
    if not run_dir:
        return None
    try:
        return model_card(ev.eval_dir / run_dir)  # relative to the evaluation (or absolute)
    except InputError:
        return None


def render_report(eval_dir: Path,
                  progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> Path:
    """Render ``EVAL_DIR/report/`` from the saved outputs; returns ``report/index.html``.

    Nothing is recomputed. The folder is replaced whole only when rendering succeeds, so a
    failed re-render leaves the previous report in place. ``progress`` may wrap the per-volume
    loop (e.g. with a progress bar).
    """
    eval_dir = Path(eval_dir)
    ev = load_evaluation(eval_dir)
    target = eval_dir / "report"
    with atomic_dir(target, "report") as tmp:
        render_evaluation(ev, tmp, progress)
    return target / "index.html"


def render_into(eval_dir: Path, folder: Path,
                progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> None:
    """Render the report of ``eval_dir`` into the new folder ``folder`` (inside a folder that the
    caller swaps in whole, as ``evaluate`` does)."""
    from octanogan.outputs.folder import write_marker

    ev = load_evaluation(eval_dir)
    folder.mkdir(parents=True)
    render_evaluation(ev, folder, progress)
    write_marker(folder, "report")
