"""The trainer: a 20-step nano run on tiny images lowers the loss; checkpoints resume; logs are written."""

from __future__ import annotations

import csv

import torch

from reference_model.data import TrainingPairs
from reference_model.model import OP4KSR
from reference_model.train import load_train_config, main

FAST = [
    "--set", "batch_size=4", "--set", "crop_size=64", "--set", "ap_periods=[16]", "--set", "learning_rate=2e-3",
    "--set", "warmup_steps=1", "--set", "validation_count=1", "--set", "validation_crop_size=128",
    "--set", "validate_every=10", "--set", "checkpoint_every=10", "--set", "log_every=5", "--set", "ema_decay=0.5",
]  # fmt: skip


def fixed_batch_l2(model: OP4KSR, data) -> float:
    pairs = TrainingPairs(data, crop_size=64, validation_count=1, validation_crop_size=128)
    lr, hr = pairs.batch(10_000, 8)
    with torch.no_grad():
        return float(torch.mean((model(lr, hr.shape[-2:]) - hr) ** 2))


def test_twenty_steps_lower_the_loss_and_resume(tiny_data, tmp_path):
    out = tmp_path / "run"
    args = ["--config", "nano", "--data", str(tiny_data), "--out", str(out), *FAST]
    assert main([*args, "--max-steps", "10"]) == 0
    assert (out / "checkpoint.pt").is_file()
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 10 and state["config"]["model"]["name"] == "nano"
    assert main([*args, "--max-steps", "20"]) == 0  # resumes at step 10
    rows = list(csv.DictReader(open(out / "log.csv")))
    steps = [int(row["step"]) for row in rows if row["loss"]]
    assert steps == [5, 10, 15, 20]
    assert [int(row["step"]) for row in rows if row["val_psnr"]] == [0, 10, 20]
    assert any((out / "tensorboard").iterdir())

    config = load_train_config("nano", {})
    initial = OP4KSR.from_config(__import__("reference_model.model").model.ModelConfig.from_dict(config.model))
    trained = OP4KSR.from_pretrained(out / "final")
    assert fixed_batch_l2(trained, tiny_data) < 0.8 * fixed_batch_l2(initial, tiny_data)


def test_batches_are_a_function_of_seed_and_step(tiny_data):
    pairs = TrainingPairs(tiny_data, crop_size=64, validation_count=2, validation_crop_size=128)
    first_lr, first_hr = pairs.batch(3, 2)
    again_lr, again_hr = pairs.batch(3, 2)
    assert torch.equal(first_lr, again_lr) and torch.equal(first_hr, again_hr)
    assert first_lr.shape == (2, 3, 16, 16) and first_hr.shape == (2, 3, 64, 64)
    held = {entry["id"] for entry in pairs.validation_entries}
    assert len(held) == 2 and held.isdisjoint(entry["id"] for entry in pairs.train_entries)


def test_unknown_option_is_one_line_error(tiny_data, tmp_path, capsys):
    assert main(["--config", "nano", "--out", str(tmp_path), "--set", "batchsize=3"]) == 2
    assert "unknown trainer option(s) batchsize" in capsys.readouterr().err
