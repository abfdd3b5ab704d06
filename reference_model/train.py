"""Train the OP4KSR reference model: one readable script, top to bottom.

    python reference_model/train.py --config nano --max-steps 2000 --out runs/nano --data ~/.cache/op4ksr-bench/data
    python reference_model/train.py --config nano --out DIR --set ap_weight=0 --set model.rfr_mode=none
    accelerate launch reference_model/train.py --config flux-dev-f16 --out DIR      # multi-GPU, bf16

Config: :class:`TrainConfig` below holds every option with its default; ``--config NAME`` reads
``reference_model/configs/NAME.yaml`` (trainer fields at the top level, the model under ``model:``); flags and
``--set key=value`` (YAML values; ``model.key`` for model fields) override it.

Each step: a batch of random HR crops from the built ``train`` suite, degraded on the fly by the benchmark's
pipeline -> model(LR) at the HR size -> L2 + LPIPS + L_AP -> AdamW step (with warm-up) -> EMA update. Outputs in
``--out``: ``log.csv`` and ``tensorboard/`` (losses, learning rate, validation PSNR/PAS on held-out crops),
``checkpoint.pt`` (a plain dict with the config inside: resume by running the same command again), and
``final/`` (the EMA weights as a loadable model folder, see ``reference_model/model.py``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import yaml

from op4ksr_bench.errors import Op4ksrError, UsageError

LOG_COLUMNS = (
    "step", "elapsed_s", "images_per_s", "learning_rate", "loss", "loss_l2", "loss_lpips", "loss_ap",
    "val_psnr", "val_pas", "val_bicubic_psnr", "val_bicubic_pas",
)  # fmt: skip


@dataclass
class TrainConfig:
    """Every trainer option, with its default. ``model`` is a ``ModelConfig`` mapping (see model.py)."""

    config: str = "nano"  # name of the YAML this came from (recorded only)
    model: dict[str, Any] = field(default_factory=dict)
    data: str | None = None  # data folder holding the built suite; default $OP4KSR_DATA or ~/.cache/op4ksr-bench/data
    suite: str = "train"  # suite with the HR training images
    out: str = "runs/op4ksr"  # output folder
    seed: int = 0  # seeds the model init, the batches and the degradations
    max_steps: int = 2000  # optimisation steps
    max_minutes: float | None = None  # stop earlier after this wall time (the step count reached is logged)
    batch_size: int = 8
    crop_size: int = 128  # HR crop side (px); a multiple of 32 (one token)
    learning_rate: float = 5e-4
    warmup_steps: int = 50  # linear warm-up, then constant
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm (0: off)
    l2_weight: float = 1.0
    lpips_weight: float = 0.0  # used only when the AlexNet weights are present
    ap_weight: float = 0.0  # L_AP weight
    ap_periods: list[int] = field(default_factory=lambda: [16, 32])  # latent and token pitch of the F16 model (px)
    ema_decay: float = 0.995
    mixed_precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU; or no / bf16
    gradient_checkpointing: bool = False
    log_every: int = 10
    validate_every: int = 250
    validation_count: int = 8  # held-out training images
    validation_crop_size: int = 256
    checkpoint_every: int = 250
    degradation: dict[str, Any] | None = None  # default: the suite's degradation config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_train_config(name: str, overrides: dict[str, Any]) -> TrainConfig:
    """YAML config + overrides (``model.x`` keys go into the model section) -> :class:`TrainConfig`."""
    from reference_model.configs import load_config_file

    values = load_config_file(name)
    values.setdefault("config", Path(name).stem)
    values["model"] = dict(values.get("model") or {})
    for key, value in overrides.items():
        if key.startswith("model."):
            values["model"][key.removeprefix("model.")] = value
        else:
            values[key] = value
    known = {item.name for item in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"unknown trainer option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for item in dataclasses.fields(TrainConfig):
        value = values.get(item.name)
        kind = str(item.type).split(" ")[0]
        if isinstance(value, str) and kind in ("float", "int"):  # YAML reads 2e-3 (no dot) as text
            try:
                values[item.name] = float(value) if kind == "float" else int(value)
            except ValueError as error:
                raise UsageError(f"trainer option {item.name} must be a number, got {value!r}") from error
    return TrainConfig(**values)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="nano", help="config name in reference_model/configs or a YAML path")
    parser.add_argument("--max-steps", type=int, help="optimisation steps")
    parser.add_argument("--max-minutes", type=float, help="wall-time budget")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--data", help="data folder with the built suite")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any option")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    for key in ("max_steps", "max_minutes", "out", "data", "seed"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    return load_train_config(args.config, overrides)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of 8-bit-quantised images in ``[0, 1]``."""
    prediction = prediction.clamp(0, 1).mul(255).round()
    target = target.clamp(0, 1).mul(255).round()
    mse = float(torch.mean((prediction - target) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def validate(model, pairs, device) -> dict[str, float]:
    """Mean PSNR and PAS of the model and of bicubic on the held-out crops."""
    import torch.nn.functional as F

    from op4ksr_bench.metrics.periodicity import DEFAULT_PERIODS, lattice_multiples, pas

    totals = {"val_psnr": 0.0, "val_pas": 0.0, "val_bicubic_psnr": 0.0, "val_bicubic_pas": 0.0}
    model.eval()
    with torch.no_grad():
        for _, lr, hr in pairs:
            periods = [p for p in DEFAULT_PERIODS if lattice_multiples(hr.shape[-2], hr.shape[-1], p) >= 1]
            prediction = model.upscale(lr.to(device), hr.shape[-2:]).cpu()
            bicubic = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            totals["val_psnr"] += psnr(prediction, hr)
            totals["val_pas"] += pas(prediction, periods).value
            totals["val_bicubic_psnr"] += psnr(bicubic, hr)
            totals["val_bicubic_pas"] += pas(bicubic, periods).value
    model.train()
    return {key: value / max(1, len(pairs)) for key, value in totals.items()}


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` a plain dict atomically."""
    from op4ksr_bench.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def train(config: TrainConfig) -> Path:
    """Run (or resume) training; returns the ``final/`` model folder."""
    from accelerate import Accelerator

    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs
    from reference_model.losses import SuperResolutionLoss
    from reference_model.model import OP4KSR, ModelConfig

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    say = accelerator.print

    # ---- model, optimiser, EMA ----
    model_config = ModelConfig.from_dict(config.model)
    model = OP4KSR.from_config(model_config, seed=config.seed)
    if config.crop_size % model.pixels_per_token or config.validation_crop_size % model.pixels_per_token:
        raise UsageError(f"crop sizes must be multiples of {model.pixels_per_token} px (one token)")
    if config.gradient_checkpointing:
        model.transformer.enable_gradient_checkpointing()
        model.vae.enable_gradient_checkpointing()
    model.train()
    parameters = model.trainable_parameters()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    trainable_names = [names[id(p)] for p in parameters]
    ema = {name: p.detach().clone().float() for name, p in model.named_parameters() if name in set(trainable_names)}
    criterion = SuperResolutionLoss(config.l2_weight, config.lpips_weight, config.ap_weight, config.ap_periods)

    # ---- resume ----
    step = 0
    checkpoint_path = out / "checkpoint.pt"
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"]["model"] != config.to_dict()["model"]:
            raise UsageError(f"{checkpoint_path} was trained with another model config; use a new --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema = state["ema"]
        step = state["step"]
        say(f"resumed from {checkpoint_path} at step {step}")
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    criterion.to(device)
    say(
        f"model {model_config.name}: {sum(p.numel() for p in parameters):,} trainable parameters, "
        f"{model.pixels_per_token} px per token, device {device}, precision {precision}"
    )

    # ---- data ----
    pairs = TrainingPairs(
        Path(config.data) if config.data else data_dir(),
        suite=config.suite,
        crop_size=config.crop_size,
        scale=model_config.scale,
        seed=config.seed,
        validation_count=config.validation_count,
        validation_crop_size=config.validation_crop_size,
        degradation=config.degradation,
    )
    validation_pairs = pairs.validation_pairs()

    # ---- logging ----
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard"))
    log_path = out / "log.csv"
    if step and log_path.is_file():  # a resumed run drops rows logged after its checkpoint (they are redone)
        with open(log_path, newline="") as handle:
            kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        with open(log_path, "w", newline="") as handle:
            rewrite = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            rewrite.writeheader()
            rewrite.writerows(kept)
    new_log = not log_path.is_file()
    log_file = open(log_path, "a", newline="")
    log = csv.DictWriter(log_file, fieldnames=LOG_COLUMNS)
    if new_log:
        log.writeheader()
    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    def write_row(row: dict[str, Any]) -> None:
        log.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})
        log_file.flush()
        for key, value in row.items():
            if key != "step" and isinstance(value, float):
                writer.add_scalar(key, value, row["step"])

    def apply_ema(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``target`` into the live weights; return the weights they replaced."""
        live = dict(accelerator.unwrap_model(model).named_parameters())
        previous = {name: live[name].detach().clone() for name in target}
        with torch.no_grad():
            for name, value in target.items():
                live[name].copy_(value.to(live[name].dtype))
        return previous

    def checkpoint() -> None:
        payload = {
            "config": config.to_dict(),
            "step": step,
            "model": accelerator.unwrap_model(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "ema": ema,
        }
        save_checkpoint(checkpoint_path, payload)

    def validation_row() -> dict[str, Any]:
        live = apply_ema(ema)
        scores = validate(accelerator.unwrap_model(model), validation_pairs, device)
        apply_ema(live)
        return {"step": step, "elapsed_s": time.time() - start, **scores}

    # ---- the loop ----
    start = time.time()
    window_start, window_images = time.time(), 0
    if step == 0:
        write_row(validation_row())
    while step < config.max_steps:
        if config.max_minutes is not None and time.time() - start > 60 * config.max_minutes:
            say(f"wall-time budget of {config.max_minutes} min reached at step {step}")
            break
        learning_rate = config.learning_rate * min(1.0, (step + 1) / max(1, config.warmup_steps))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        lr_images, hr_images = pairs.batch(step, config.batch_size)
        lr_images, hr_images = lr_images.to(device), hr_images.to(device)
        with accelerator.autocast():
            prediction = model(lr_images, hr_images.shape[-2:])
        loss, parts = criterion(prediction, hr_images)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.grad_clip > 0:
            accelerator.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        with torch.no_grad():
            live = dict(accelerator.unwrap_model(model).named_parameters())
            for name, average in ema.items():
                average.lerp_(live[name].detach().float(), 1.0 - config.ema_decay)
        step += 1
        window_images += config.batch_size
        if step % config.log_every == 0 or step == config.max_steps:
            rate = window_images / max(1e-9, time.time() - window_start)
            window_start, window_images = time.time(), 0
            row = {
                "step": step,
                "elapsed_s": time.time() - start,
                "images_per_s": rate,
                "learning_rate": learning_rate,
                "loss": float(loss.detach()),
                "loss_l2": parts.get("l2"),
                "loss_lpips": parts.get("lpips"),
                "loss_ap": parts.get("ap"),
            }
            write_row(row)
            say(f"step {step}/{config.max_steps} loss {row['loss']:.5f} l2 {parts['l2']:.5f} {rate:.1f} img/s")
        if step % config.validate_every == 0 or step == config.max_steps:
            row = validation_row()
            write_row(row)
            say(f"step {step}: validation PSNR {row['val_psnr']:.2f} dB (bicubic {row['val_bicubic_psnr']:.2f}), "
                f"PAS {row['val_pas']:.4f} (bicubic {row['val_bicubic_pas']:.4f})")  # fmt: skip
        if step % config.checkpoint_every == 0:
            checkpoint()

    checkpoint()
    final = out / "final"
    unwrapped = accelerator.unwrap_model(model)
    live = apply_ema(ema)
    unwrapped.save_pretrained(final)
    apply_ema(live)
    writer.close()
    log_file.close()
    say(f"done: {step} steps in {time.time() - start:.0f} s; EMA model in {final}")
    return final


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        train(parse_args(argv))
    except Op4ksrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
