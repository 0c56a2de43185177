"""From a trained run to a new patient's report: calibration and prediction (the model card
page is the report's, ``octanogan.report.model_card``).

Names load on first use (the CLI's ``--help`` stays free of torch).
"""

from octanogan.lazy import lazy_exports

_EXPORTS = {
    "calibrate_run": "calibrate", "calibration_record": "calibrate",
    "predict_inputs": "predict",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
