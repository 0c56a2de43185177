"""The evaluation folder written by ``octanogan evaluate``: its file names (docs/formats.md).

    octanogan.json     marker (kind "evaluation")
    evaluation.json    pointers, thresholds, provenance, warnings
    metrics.json, metrics.csv, curves.json, figures/
    scores/            the scores folder, unless --scores named another
    report/            the HTML report (its own marker, kind "report")
"""

KIND = "evaluation"
EVALUATION, METRICS_JSON, METRICS_CSV = "evaluation.json", "metrics.json", "metrics.csv"
CURVES, FIGURES, REPORT, SCORES = "curves.json", "figures", "report", "scores"
