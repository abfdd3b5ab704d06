"""The trainer: nano runs on tiny images lower the loss, resume exactly, survive non-finite losses, and run as two
real processes under torchrun (gloo on CPU) with one writer and pickle-free checkpoints."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from reference_model.data import TrainingPairs
from reference_model.model import OP4KSR, ModelConfig
from reference_model.train import batch_digest, load_train_config, main

REPOSITORY = Path(__file__).resolve().parents[2]
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


def log_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_twenty_steps_lower_the_loss_and_resume_exactly(tiny_data, tmp_path, monkeypatch):
    # a schedule that does not depend on max_steps, so 10 + 10 steps must equal 20 straight ones
    fast = [*FAST, "--set", "lr_schedule=constant_with_warmup"]
    out = tmp_path / "run"
    args = ["--config", "nano", "--data", str(tiny_data), "--out", str(out), *fast]
    assert main([*args, "--max-steps", "10"]) == 0
    checkpoint = out / "checkpoint"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "ema.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "state.json",
        "trained.safetensors",
    ]  # fmt: skip  (safetensors + JSON: nothing to unpickle)
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["step"] == 10 and state["config"]["model"]["name"] == "nano" and state["processes"] == 1
    assert state["scheduler"]["last_epoch"] == 10 and state["ema"]["optimization_step"] == 10

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the checkpoint must load without unpickling")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "load", no_unpickling)
        patch.setattr(pickle, "load", no_unpickling)
        patch.setattr(pickle, "loads", no_unpickling)
        assert main([*args, "--max-steps", "20"]) == 0  # resumes at step 10
    rows = log_rows(out)
    assert [int(row["step"]) for row in rows if row["loss"]] == [5, 10, 15, 20]
    assert [int(row["step"]) for row in rows if row["val_psnr"]] == [0, 10, 20]
    assert any((out / "tensorboard").iterdir())

    # the same 20 steps without the interruption: identical losses and weights (optimiser, schedule, EMA restored)
    straight = tmp_path / "straight"
    assert main(["--config", "nano", "--data", str(tiny_data), "--out", str(straight), *fast, "--max-steps", "20"]) == 0
    resumed_losses = [(r["step"], r["loss"]) for r in rows if r["loss"]]
    assert resumed_losses == [(r["step"], r["loss"]) for r in log_rows(straight) if r["loss"]]
    for group in ("trained", "ema", "optimizer"):
        first = load_file(str(checkpoint / f"{group}.safetensors"))
        second = load_file(str(straight / "checkpoint" / f"{group}.safetensors"))
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), group

    config = load_train_config("nano", {})
    initial = OP4KSR.from_config(ModelConfig.from_dict(config.model))
    trained = OP4KSR.from_pretrained(out / "final")
    assert fixed_batch_l2(trained, tiny_data) < 0.8 * fixed_batch_l2(initial, tiny_data)


def test_non_finite_losses_are_skipped_logged_and_stop_the_run(tiny_data, tmp_path, monkeypatch, capsys):
    from reference_model.losses import SuperResolutionLoss

    real_forward = SuperResolutionLoss.forward
    calls = {"count": 0}

    def sometimes_nan(self, prediction, target):
        calls["count"] += 1
        total, parts = real_forward(self, prediction, target)
        if calls["count"] in (2, 3):  # steps 2 and 3 of the run
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(SuperResolutionLoss, "forward", sometimes_nan)
    out = tmp_path / "run"
    args = ["--config", "nano", "--data", str(tiny_data), "--out", str(out), *FAST, "--max-steps", "5"]
    assert main(args) == 0
    rows = log_rows(out)
    skipped = {int(row["step"]): int(row["nonfinite_steps"]) for row in rows if row["nonfinite_steps"]}
    assert skipped[2] == 1 and skipped[3] == 2 and skipped[5] == 2  # logged when they happen, counted after
    weights = load_file(str(out / "checkpoint" / "trained.safetensors"))
    ema = load_file(str(out / "checkpoint" / "ema.safetensors"))
    assert all(torch.isfinite(t).all() for t in [*weights.values(), *ema.values()])

    calls["count"] = 0
    stopped = tmp_path / "stopped"
    args = ["--config", "nano", "--data", str(tiny_data), "--out", str(stopped), *FAST, "--max-steps", "5"]
    assert main([*args, "--set", "max_nonfinite_steps=1"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: 2 non-finite steps (more than max_nonfinite_steps=1) by step 3")


def test_batches_are_a_function_of_seed_step_and_rank(tiny_data):
    pairs = TrainingPairs(tiny_data, crop_size=64, validation_count=2, validation_crop_size=128)
    first_lr, first_hr = pairs.batch(3, 2)
    again_lr, again_hr = pairs.batch(3, 2, rank=0)
    assert torch.equal(first_lr, again_lr) and torch.equal(first_hr, again_hr)
    assert not torch.equal(first_hr, pairs.batch(3, 2, rank=1)[1])
    assert first_lr.shape == (2, 3, 16, 16) and first_hr.shape == (2, 3, 64, 64)
    held = {entry["id"] for entry in pairs.validation_entries}
    assert len(held) == 2 and held.isdisjoint(entry["id"] for entry in pairs.train_entries)


def test_unknown_option_is_one_line_error(tiny_data, tmp_path, capsys):
    assert main(["--config", "nano", "--out", str(tmp_path), "--set", "batchsize=3"]) == 2
    assert "unknown trainer option(s) batchsize" in capsys.readouterr().err


def test_old_pickled_checkpoint_is_refused(tiny_data, tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"not loaded")
    assert main(["--config", "nano", "--data", str(tiny_data), "--out", str(tmp_path), *FAST]) == 2
    assert "old pickled checkpoint format" in capsys.readouterr().err


def test_two_processes_under_torchrun_then_resume_on_one(tiny_data, tmp_path):
    """``torchrun --nproc_per_node 2`` on CPU: gloo, a slice per rank, one writer; then one process resumes."""
    out = tmp_path / "run"
    options = [*FAST, "--set", "log_every=1", "--set", "validate_every=100", "--set", "checkpoint_every=100"]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    script = str(REPOSITORY / "reference_model" / "train.py")
    command = [torchrun, "--standalone", "--nproc-per-node=2", script, "--config", "nano", "--max-steps", "6",
               "--data", str(tiny_data), "--out", str(out), *options]  # fmt: skip
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPOSITORY))
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    # each rank drew its own slice: the digests it printed are those of its (seed, step, rank) batch
    pairs = TrainingPairs(tiny_data, crop_size=64, validation_count=1, validation_crop_size=128)
    expected = {f"rank {rank}/2: batch 0 sha256 {batch_digest(pairs.batch(0, 4, rank=rank)[1])}" for rank in (0, 1)}
    printed = {line for line in result.stdout.splitlines() if line.startswith("rank ")}
    assert printed == expected and len({line.split()[-1] for line in printed}) == 2

    # one writer: one log line per logged step, one checkpoint, one final model
    rows = log_rows(out)
    assert [int(row["step"]) for row in rows if row["loss"]] == [1, 2, 3, 4, 5, 6]
    assert [int(row["step"]) for row in rows if row["val_psnr"]] == [0, 6]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "config.yaml", "final", "log.csv", "tensorboard"]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and state["processes"] == 2
    assert len(list((out / "tensorboard").iterdir())) == 1

    # resume with one process: the step count and the loss curve continue
    assert main(["--config", "nano", "--max-steps", "9", "--data", str(tiny_data), "--out", str(out), *options]) == 0
    rows = log_rows(out)
    losses = {int(row["step"]): float(row["loss"]) for row in rows if row["loss"]}
    assert sorted(losses) == list(range(1, 10))
    assert sum(losses[s] for s in (7, 8, 9)) < sum(losses[s] for s in (1, 2, 3))
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 9 and state["processes"] == 1 and state["ema"]["optimization_step"] == 9
