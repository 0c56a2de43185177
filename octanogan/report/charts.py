"""Chart geometry for the inline SVG figures (ROC, PR, score distributions).

Python computes pixel coordinates; the ``_charts.html`` template draws them, so every text
label (marker names, volume ids) goes through Jinja's autoescaping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

HEALTHY_COLOUR = "#2C7FB8"
DISEASED_COLOUR = "#D95F02"
POOLED_COLOUR = "#263238"
MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class Axis:
    """A linear map from data values ``lo..hi`` to pixels ``start..end``."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (value - self.lo) / span * (self.end - self.start)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Series:
    """A polyline (or a filled area when ``fill``) with its legend entry."""

    legend: str
    colour: str
    points: str
    dashed: bool = False
    fill: bool = False
    bold: bool = False


@dataclass(frozen=True)
class Guide:
    """A straight reference line (chance diagonal, threshold) with an optional label."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    dashed: bool = True


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    colour: str
    title: str
    href: str = ""


@dataclass
class Chart:
    """Everything ``_charts.html`` needs to draw one figure."""

    title: str
    x_label: str
    y_label: str
    x: Axis
    y: Axis
    width: int = 340
    height: int = 280
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    guides: list[Guide] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)
    legend: list[Series] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering ``lo..hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(v, 10) for v in np.arange(first, hi + step * 1e-6, step)]


def _ticks(axis: Axis, values: Sequence[float]) -> list[Tick]:
    return [Tick(axis(v), f"{v:g}") for v in values]


def _points(xs: Sequence[float], ys: Sequence[float], x: Axis, y: Axis) -> str:
    return " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys))


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_CURVE_POINTS
         ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` evenly spaced points of a curve, first and last kept."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if len(xs) > limit:
        keep = np.unique(np.linspace(0, len(xs) - 1, limit).round().astype(int))
        xs, ys = xs[keep], ys[keep]
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok]


def _unit_chart(title: str, x_label: str, y_label: str) -> Chart:
    x = Axis(0.0, 1.0, 48, 326)
    y = Axis(0.0, 1.0, 244, 12)
    ticks = [0, 0.25, 0.5, 0.75, 1]
    return Chart(title, x_label, y_label, x, y, x_ticks=_ticks(x, ticks), y_ticks=_ticks(y, ticks))


def curve_chart(kind: str, curves: dict[str, dict], colours: dict[str, str]) -> Chart:
    """ROC (``kind='roc'``) or precision-recall (``'pr'``) curves, one line per marker."""
    roc = kind == "roc"
    chart = _unit_chart("ROC" if roc else "Precision–recall",
                        "False positive rate" if roc else "Recall",
                        "True positive rate" if roc else "Precision")
    if roc:
        chart.guides.append(Guide(chart.x(0), chart.y(0), chart.x(1), chart.y(1)))
    for marker, curve in curves.items():
        xs, ys = thin(curve.get("x", []), curve.get("y", []))
        if not len(xs):
            continue
        summary = curve.get("auc" if roc else "ap")
        name = "AUROC" if roc else "AP"
        legend = f"{marker}  {name} {summary:.2f}" if _is_number(summary) else marker
        line = Series(legend, colours.get(marker, POOLED_COLOUR), _points(xs, ys, chart.x, chart.y),
                      bold=marker == "pooled")
        chart.series.append(line)
        chart.legend.append(line)
    return chart


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _threshold_guides(chart: Chart, thresholds: dict[str, float | None]) -> None:
    top, bottom = sorted((chart.y.start, chart.y.end))
    for label, value in thresholds.items():
        if value is not None and chart.x.lo <= value <= chart.x.hi:
            chart.guides.append(Guide(chart.x(value), top, chart.x(value), bottom, label,
                                      dashed=bool(chart.guides)))


def _score_axis(values: np.ndarray, thresholds: dict[str, float | None]) -> tuple[float, float]:
    extra = [v for v in thresholds.values() if v is not None]
    finite = values[np.isfinite(values)]
    lo = min([*finite, *extra], default=0.0)
    hi = max([*finite, *extra], default=1.0)
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 0.05)
    return lo - pad, hi + pad


def label_order(groups: Iterable[str]) -> list[str]:
    """Healthy first, then diseased, then any other label."""
    groups = list(groups)
    return [g for g in ("healthy", "diseased") if g in groups] + \
        [g for g in groups if g not in ("healthy", "diseased")]


def strip_chart(groups: dict[str, list[tuple[float, str, str]]],
                thresholds: dict[str, float | None]) -> Chart:
    """Volume scores as dots in one row per label; each dot links to its volume page.

    ``groups`` maps a label to ``(score, volume id, href)`` triples.
    """
    scores = np.array([s for items in groups.values() for s, _, _ in items], float)
    lo, hi = _score_axis(scores, thresholds)
    rows = label_order(groups)
    height = 70 + 46 * len(rows)
    x = Axis(lo, hi, 90, 700)
    y = Axis(0, max(len(rows), 1), 34, height - 40)
    chart = Chart("Volume scores", "Volume anomaly score", "", x, y, width=720, height=height,
                  x_ticks=_ticks(x, [v for v in nice_ticks(lo, hi, 6) if lo <= v <= hi]),
                  y_ticks=[Tick(y(i + 0.5), label) for i, label in enumerate(rows)])
    for i, label in enumerate(rows):
        colour = {"healthy": HEALTHY_COLOUR, "diseased": DISEASED_COLOUR}.get(label, POOLED_COLOUR)
        for j, (score, volume_id, href) in enumerate(groups[label]):
            if math.isfinite(score):
                jitter = ((j * 0.618034) % 1.0 - 0.5) * 0.5
                chart.dots.append(Dot(x(score), y(i + 0.5 + jitter), colour,
                                      f"{volume_id}: {score:.4g}", href))
    _threshold_guides(chart, thresholds)
    return chart


def histogram_chart(groups: dict[str, np.ndarray], thresholds: dict[str, float | None],
                    bins: int = 30) -> Chart:
    """B-scan score histograms (share of each group's B-scans per bin), one area per group."""
    values = np.concatenate([v[np.isfinite(v)] for v in groups.values()] or [np.zeros(0)])
    lo, hi = _score_axis(values, thresholds)
    edges = np.linspace(lo, hi, bins + 1)
    shares = {k: np.histogram(v[np.isfinite(v)], edges)[0] / max(np.isfinite(v).sum(), 1)
              for k, v in groups.items()}
    top = max([s.max() for s in shares.values() if s.size] or [1.0]) or 1.0
    x = Axis(lo, hi, 60, 700)
    y = Axis(0, top * 1.1, 200, 30)
    chart = Chart("B-scan scores", "B-scan anomaly score", "Share of B-scans", x, y, width=720,
                  height=240,
                  x_ticks=_ticks(x, [v for v in nice_ticks(lo, hi, 6) if lo <= v <= hi]),
                  y_ticks=[Tick(y(v), f"{v:.0%}") for v in nice_ticks(0, top * 1.1, 4)])
    for label, share in shares.items():
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(share, 2)
        xs = np.concatenate([[edges[0]], xs, [edges[-1]]])
        ys = np.concatenate([[0], ys, [0]])
        colour = {"healthy": HEALTHY_COLOUR, "diseased": DISEASED_COLOUR}.get(label, POOLED_COLOUR)
        n = int(np.isfinite(groups[label]).sum())
        line = Series(f"{label} volumes ({n} B-scans)", colour, _points(xs, ys, x, y), fill=True)
        chart.series.append(line)
        chart.legend.append(line)
    _threshold_guides(chart, thresholds)
    return chart
