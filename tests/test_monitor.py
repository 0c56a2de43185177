"""The live training view (TensorBoard events read back with tensorboard's own reader) and the
training health checks, on tiny real runs."""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from octanogan.training.health import check_losses

TINY = ("--batch-size", "8", "--latent-dim", "8", "--base-channels", "8", "--device", "cpu")


def _events(run) -> EventAccumulator:  # noqa: ANN001
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _steps(events: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in events.Scalars(tag)]


def test_train_writes_tensorboard_events_with_every_tag_and_step(tiny_run):
    events = _events(tiny_run)
    scalars = set(events.Tags()["scalars"])
    assert {"gan/d_loss", "gan/g_loss", "gan/d_real", "gan/d_fake", "gan/g_grad_norm",
            "gan/d_grad_norm", "gan/lr", "gan/patches_per_s", "gan/sample_diversity",
            "encoder/e_loss", "encoder/e_image", "encoder/e_feature", "encoder/e_grad_norm",
            "encoder/lr", "encoder/patches_per_s"} <= scalars
    # one step count through both phases: GAN 1..6, then encoder 7..12 (tiny_run: 6 + 6)
    assert _steps(events, "gan/d_loss") == list(range(1, 7))
    assert _steps(events, "encoder/e_loss") == list(range(7, 13))
    assert all(e.value > 0 for e in events.Scalars("gan/d_grad_norm"))
    assert {"samples", "reconstructions"} <= set(events.Tags()["images"])
    assert [e.step for e in events.Images("samples")] == [3, 6]  # every checkpoint
    assert "config/text_summary" in events.Tags()["tensors"]


def test_a_resume_continues_the_curves_without_repeating_steps(tiny_cohort, tiny_run, tmp_path, cli):
    from torch.utils.tensorboard import SummaryWriter

    store = tiny_run.parent / "store"
    run = tmp_path / "run"
    first = cli("train", store, "--out", run, "--iterations", "4", "--encoder-iterations", "0",
                "--checkpoint-every", "2", *TINY)
    assert first.exit_code == 0, first.output
    # a process killed after its last checkpoint had logged steps 5 and 6 already
    time.sleep(1.1)  # event files are ordered by their creation second
    killed = SummaryWriter(str(run / "tensorboard"))
    for step in (5, 6):
        killed.add_scalar("gan/d_loss", 999.0, step)
    killed.close()
    time.sleep(1.1)
    resumed = cli("train", store, "--out", run, "--resume", "--iterations", "8")
    assert resumed.exit_code == 0, resumed.output
    d_loss = _events(run).Scalars("gan/d_loss")
    assert [e.step for e in d_loss] == list(range(1, 9))
    assert all(e.value != 999.0 for e in d_loss)


def test_without_tensorboard_training_runs_and_says_so_in_one_line(tiny_run, tmp_path, cli,
                                                                   monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    result = cli("train", tiny_run.parent / "store", "--out", tmp_path / "run", "--iterations", "2",
                 "--encoder-iterations", "0", *TINY)
    assert result.exit_code == 0, result.output
    assert result.output.count("install the optional 'tensorboard' package") == 1
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_a_broken_run_is_called_unhealthy(tiny_run, tmp_path, cli):
    """A learning rate of 1000 lets D win at once and G collapse: train, run.json and the model
    card all say so."""
    run = tmp_path / "run"
    result = cli("train", tiny_run.parent / "store", "--out", run, "--iterations", "120",
                 "--encoder-iterations", "2", "--checkpoint-every", "60", "--lr", "1000", *TINY)
    assert result.exit_code == 0, result.output
    assert "warning: the discriminator wins" in result.output
    assert "look alike" in result.output
    health = json.loads((run / "run.json").read_text())["health"]
    assert len(health["warnings"]) == 2 and health["sample_diversity"] < 0.25
    info = cli("info", run)
    assert "WARNING: the discriminator wins" in info.output


def test_non_finite_losses_are_found_and_unlogged_cells_are_not():
    rows = [{"iteration": i, "phase": "gan", "d_loss": 0.7, "g_loss": 0.7, "e_loss": None,
             "d_real": 0.5, "d_fake": 0.5, "gradient_penalty": None, "e_image": None,
             "e_feature": None} for i in range(1, 41)]
    healthy = pd.DataFrame(rows)
    assert check_losses(healthy, "dcgan") == []
    rows[30]["g_loss"] = float("nan")
    [warning] = check_losses(pd.DataFrame(rows), "dcgan")
    assert "NaN or infinite at gan iteration 31" in warning


@pytest.mark.parametrize("objective, warned", [("dcgan", True), ("wgan-gp", False)])
def test_the_discriminator_check_applies_to_probabilities_only(objective, warned):
    rows = [{"iteration": i, "phase": "gan", "d_loss": 0.01, "g_loss": 6.0, "d_real": 0.99,
             "d_fake": 0.01} for i in range(1, 101)]
    assert bool(check_losses(pd.DataFrame(rows), objective)) is warned
