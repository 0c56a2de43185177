"""The clinician HTML report: ``EVAL/report/index.html`` and one page per volume.

Rendered from the saved EVAL and SCORES folders only (docs/report.md); self-contained and offline.
"""

from octanogan.report.render import render_report

__all__ = ["render_report"]
