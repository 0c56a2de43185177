"""The prediction folder written by ``octanogan predict``: its file names (docs/formats.md).

    octanogan.json     marker (kind "prediction")
    inputs/            the inputs as NIfTI with pseudonymous ids, when files or folders were given
    scores/            the scores folder (maps on each input's grid, tables)
    predictions.csv    one row per input volume: score, threshold, flags, QC; refused inputs too
    prediction.json    thresholds and where they came from, the run, the scoring (no metrics)
    report/            the HTML report, with the model card
"""

KIND = "prediction"
INPUTS, SCORES, PREDICTIONS, RECORD, REPORT = (
    "inputs", "scores", "predictions.csv", "prediction.json", "report")
