"""Train the OP4KSR reference model: one readable script, top to bottom.

    python reference_model/train.py --config nano --max-steps 2000 --out runs/nano --data ~/.cache/op4ksr-bench/data
    python reference_model/train.py --config nano --out DIR --set ap_weight=0 --set model.rfr_mode=none
    torchrun --nproc_per_node 8 reference_model/train.py --config flux-dev-f16 --out DIR ...   # 8 GPUs, bf16
    accelerate launch --num_processes 8 reference_model/train.py --config flux-dev-f16 --out DIR ...

Config: :class:`TrainConfig` below holds every option with its default; ``--config NAME`` reads
``reference_model/configs/NAME.yaml`` (trainer fields at the top level, the model under ``model:``); flags and
``--set key=value`` (YAML values; ``model.key`` for model fields) override it.

Each step, on every process: its own batch of random HR crops from the built ``train`` suite (seeded by step and
process rank), degraded on the fly by the benchmark's pipeline -> model(LR) at the HR size -> L2 + LPIPS + L_AP
-> (gradients averaged over processes by DDP) -> AdamW step -> learning-rate schedule (diffusers' ``cosine`` by
default, with linear warm-up) -> EMA update (diffusers' ``EMAModel`` over exactly the trained parameters). A
non-finite loss or gradient norm on any process skips the step on all of them (logged in ``nonfinite_steps``);
more than ``max_nonfinite_steps`` stop the run with one line.

Stages (``stage``): ``sr`` (default) trains the super-resolution model as above; ``vae`` pretrains the F16 VAE
alone as an HR autoencoder (``decode(encode(HR))`` against the HR crop, the same losses; only the VAE's
parameters are trained; validation PSNR is the VAE's reconstruction of the held-out HR crops) and, before
writing ``final/``, sets the VAE's ``shift_factor``/``scaling_factor`` to the mean and 1 / standard deviation of
its latents on 16 training batches, so the transformer sees unit-variance latents. An ``sr`` run then loads that
VAE with ``model.vae_path=<vae run>/final/vae`` and ``model.train_vae=false`` (frozen: no gradient reaches it).
``reference_model/configs/cpu-skip-vae.yaml`` and ``cpu-skip.yaml`` are that two-stage recipe.

Only the main process validates, logs and writes. Outputs in ``--out``: ``log.csv`` and ``tensorboard/`` (losses,
learning rate, validation PSNR/PAS on held-out crops), ``checkpoint/`` (see :func:`save_checkpoint`: trained
parameters only, optimiser, scheduler, EMA, RNG, step, config; safetensors + JSON, no pickle; resume by running
the same command again, with any number of processes), and ``final/`` (the EMA weights as a loadable model
folder, see ``reference_model/model.py``).

Choices: the checkpoint is written here rather than by ``accelerator.save_state``, because accelerate stores RNG
and custom states as per-process pickles (``random_states_<rank>.pkl``, loaded by unpickling and tied to the
process count) and its model file holds the whole model, base weights included. The scheduler is stepped once per
optimiser step and not passed to ``accelerator.prepare`` (a prepared scheduler advances once per process).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import shutil
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
    "val_psnr", "val_pas", "val_bicubic_psnr", "val_bicubic_pas", "nonfinite_steps",
)  # fmt: skip
CHECKPOINT_FORMAT = "op4ksr-train-checkpoint"
CHECKPOINT_VERSION = 1
STAGES = ("sr", "vae")
LR_SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


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
    batch_size: int = 8  # per process
    crop_size: int = 128  # HR crop side (px); a multiple of 32 (one token)
    learning_rate: float = 5e-4
    skip_learning_rate: float | None = None  # the bicubic skip's gate and prefilter (default: learning_rate)
    warmup_steps: int = 50  # linear warm-up, then the schedule
    lr_schedule: str = "cosine"  # diffusers.optimization.get_scheduler name (cosine decays to 0 at max_steps)
    max_nonfinite_steps: int = 20  # stop after more than this many skipped (non-finite loss/gradient) steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm (0: off)
    l2_weight: float = 1.0
    lpips_weight: float = 0.0  # used only when the AlexNet weights are present
    ap_weight: float = 0.0  # L_AP weight
    ap_periods: list[int] = field(default_factory=lambda: [16, 32])  # latent and token pitch of the F16 model (px)
    ema_decay: float = 0.995  # EMAModel's maximum decay (it warms up as (1 + n) / (10 + n))
    mixed_precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU; or no / bf16
    gradient_checkpointing: bool = False
    log_every: int = 10
    validate_every: int = 250
    validation_count: int = 8  # held-out training images
    validation_crop_size: int = 256
    checkpoint_every: int = 250
    degradation: dict[str, Any] | None = None  # default: the suite's degradation config
    stage: str = "sr"  # sr: train the SR model; vae: pretrain the VAE alone as an HR autoencoder (module docstring)
    save_frozen_vae: bool = False  # final/ also holds vae/ when the VAE is frozen and read from model.vae_path
    init_from: str | None = None  # a saved model folder whose trained parameters start a new run (fine-tuning)

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
    config = TrainConfig(**values)
    if config.stage not in STAGES:
        raise UsageError(f"stage must be one of {', '.join(STAGES)}, got {config.stage!r}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {config.lr_schedule!r}")
    return config


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


def validate(model, pairs, device, stage: str = "sr") -> dict[str, float]:
    """Mean PSNR and PAS of the model and of bicubic on the held-out crops (stage ``vae``: of the VAE's
    reconstruction of the HR crop)."""
    from op4ksr_bench.metrics.periodicity import DEFAULT_PERIODS, lattice_multiples, pas
    from reference_model.model import benchmark_bicubic

    totals = {"val_psnr": 0.0, "val_pas": 0.0, "val_bicubic_psnr": 0.0, "val_bicubic_pas": 0.0}
    model.eval()
    with torch.no_grad():
        for _, lr, hr in pairs:
            periods = [p for p in DEFAULT_PERIODS if lattice_multiples(hr.shape[-2], hr.shape[-1], p) >= 1]
            if stage == "vae":
                prediction = model.reconstruct(hr.to(device)).clamp(0, 1).cpu()
            else:
                prediction = model.upscale(lr.to(device), hr.shape[-2:]).cpu()
            bicubic = benchmark_bicubic(lr, hr.shape[-2:])  # the benchmark's own bicubic method
            totals["val_psnr"] += psnr(prediction, hr)
            totals["val_pas"] += pas(prediction, periods).value
            totals["val_bicubic_psnr"] += psnr(bicubic, hr)
            totals["val_bicubic_pas"] += pas(bicubic, periods).value
    model.train()
    return {key: value / max(1, len(pairs)) for key, value in totals.items()}


def latent_statistics(model, pairs, config: TrainConfig, batches: int = 16) -> tuple[float, float]:
    """Mean and ``1 / std`` of the VAE's raw latents (posterior means) on ``batches`` seeded training batches."""
    values = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for index in range(batches):
            _, hr = pairs.batch(10**9 + index, config.batch_size)  # batch numbers no training step uses
            values.append(model.vae.encode_mean(hr.to(device) * 2.0 - 1.0).float().flatten().cpu())
    latents = torch.cat(values)
    return float(latents.mean()), float(1.0 / latents.std().clamp_min(1e-6))


def batch_digest(images: torch.Tensor) -> str:
    """First 16 hex digits of the SHA-256 of a batch's float32 bytes (to tell processes' batches apart)."""
    import hashlib

    return hashlib.sha256(images.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


class TrainingStopped(Op4ksrError):
    """Training stopped on purpose (too many non-finite steps); the message says why and what to do."""


def _checkpoint_folder(out: Path) -> Path | None:
    """The complete checkpoint folder in ``out`` (``checkpoint/``, or the previous one if a swap was cut short)."""
    for name in ("checkpoint", ".checkpoint.old"):
        if (out / name / "state.json").is_file():
            return out / name
    return None


def save_checkpoint(out: Path, tensors: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> Path:
    """Write ``out/checkpoint/`` atomically: ``<group>.safetensors`` per tensor group plus ``state.json``.

    Written into ``out/.checkpoint.tmp``, then swapped in by renames; at every moment a complete checkpoint
    exists under ``checkpoint/`` or ``.checkpoint.old/`` (:func:`_checkpoint_folder` reads either).
    """
    from safetensors.torch import save_file

    from op4ksr_bench.atomic import atomic_write_text

    temporary, final, old = out / ".checkpoint.tmp", out / "checkpoint", out / ".checkpoint.old"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for group, values in tensors.items():
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in values.items()}, str(temporary / f"{group}.safetensors")
        )
    atomic_write_text(temporary / "state.json", json.dumps(state, indent=1, sort_keys=True) + "\n")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(temporary, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read a checkpoint folder: safetensors and JSON only (nothing is unpickled)."""
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text())
    if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
        raise UsageError(f"{folder} is not a version-{CHECKPOINT_VERSION} trainer checkpoint; use a new --out")
    tensors = {path.stem: load_file(str(path)) for path in sorted(folder.glob("*.safetensors"))}
    return tensors, state


def _optimizer_tensors(optimizer: torch.optim.Optimizer, names: list[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as ``{"<name>/<key>": tensor}`` plus JSON-able param groups (parameter order = ``names``)."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{names[index]}/{key}"] = torch.as_tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_state(tensors: dict[str, torch.Tensor], saved: dict, names: list[str]) -> dict:
    """Inverse of :func:`_optimizer_tensors`: an ``optimizer.load_state_dict`` payload."""
    per_parameter: dict[int, dict[str, torch.Tensor]] = {}
    index = {name: position for position, name in enumerate(names)}
    for key, value in tensors.items():
        name, field_name = key.rsplit("/", 1)
        per_parameter.setdefault(index[name], {})[field_name] = value
    return {"state": per_parameter, "param_groups": saved["param_groups"]}


def initialise_from(model, folder: Path, names: list[str]) -> None:
    """Copy the trained tensors ``names`` of a saved model folder into ``model`` (one line when they do not fit)."""
    from reference_model.model import OP4KSR

    if not (folder / "op4ksr.json").is_file():
        raise UsageError(f"init_from {folder} is not a saved model folder (no op4ksr.json); give a run's final/")
    source = dict(OP4KSR.from_pretrained(folder).named_parameters())
    live = dict(model.named_parameters())
    missing = [name for name in names if name not in source or source[name].shape != live[name].shape]
    if missing:
        raise UsageError(
            f"init_from {folder} does not hold {len(missing)} of the trained tensors with their shapes "
            f"(first: {missing[0]}); it must be saved from the same model config"
        )
    with torch.no_grad():
        for name in names:
            live[name].copy_(source[name].to(live[name].dtype))


def train(config: TrainConfig) -> Path:
    """Run (or resume) training; returns the ``final/`` model folder."""
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel, cast_training_params

    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs
    from reference_model.losses import SuperResolutionLoss
    from reference_model.model import OP4KSR, ModelConfig

    out = Path(config.out)
    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    rank, processes, main_process = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    device = accelerator.device
    say = accelerator.print
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
    if (out / "checkpoint.pt").is_file() and _checkpoint_folder(out) is None:
        raise UsageError(f"{out / 'checkpoint.pt'} is the old pickled checkpoint format, which is not loaded "
                         "(unpickling runs code); use a new --out")  # fmt: skip

    # ---- model: frozen base in the compute dtype (bf16 on GPU), trained parameters in float32 ----
    model_config = ModelConfig.from_dict(config.model)
    weight_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = OP4KSR.from_config(model_config, seed=config.seed, dtype=weight_dtype, device=device)
    pixels_per_token = model.pixels_per_token
    if config.crop_size % pixels_per_token or config.validation_crop_size % pixels_per_token:
        raise UsageError(f"crop sizes must be multiples of {pixels_per_token} px (one token)")
    if config.gradient_checkpointing:
        model.transformer.enable_gradient_checkpointing()
        model.vae.enable_gradient_checkpointing()
    model.train()
    if config.stage == "vae":
        if not model_config.train_vae:
            raise UsageError("stage vae trains the VAE: set model.train_vae=true (the sr stage freezes it)")
        trained_ids = {id(p) for p in model.vae.parameters()}
    else:
        trained_ids = {id(p) for p in model.trainable_parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trained_ids)
    cast_training_params(model, dtype=torch.float32)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    parameters = [p for p in model.parameters() if p.requires_grad]
    # parameter groups in the order of `names` (the checkpoint's optimizer state is indexed by it); the skip's
    # gate and prefilter (registered on the model itself, so listed first) may take their own learning rate
    groups: list[dict[str, Any]] = []
    for name, parameter in zip(names, parameters, strict=True):
        rate = config.learning_rate
        if name in ("skip_gate", "skip_prefilter") and config.skip_learning_rate is not None:
            rate = config.skip_learning_rate
        if not groups or groups[-1]["lr"] != rate:
            groups.append({"params": [], "lr": rate})
        groups[-1]["params"].append(parameter)
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler(
        config.lr_schedule, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.max_steps
    )
    criterion = SuperResolutionLoss(config.l2_weight, config.lpips_weight, config.ap_weight, config.ap_periods)

    # ---- resume (every process reads the same checkpoint) ----
    step, nonfinite_steps, saved = 0, 0, None
    folder = _checkpoint_folder(out)
    if config.init_from and folder is None:  # fine-tuning: a resumed run takes everything from its checkpoint
        initialise_from(model, Path(config.init_from), names)
        say(f"initialised {len(names)} trained tensors from {config.init_from}")
    if folder is not None:
        tensors, saved = load_checkpoint(folder)
        if saved["config"]["model"] != config.to_dict()["model"] or saved["trained"] != names:
            raise UsageError(f"{folder} was trained with another model config; use a new --out")
        live = dict(model.named_parameters())
        with torch.no_grad():
            for name in names:
                live[name].copy_(tensors["trained"][name])
        optimizer.load_state_dict(_optimizer_state(tensors["optimizer"], saved["optimizer"], names))
        scheduler.load_state_dict(saved["scheduler"])
        # the schedule is a function of max_steps: a resume with another --max-steps continues on the new curve
        rules = zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        rates = [base * rule(scheduler.last_epoch) for base, rule in rules]
        for group, rate in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        scheduler._last_lr = rates
        torch.set_rng_state(tensors["rng"]["torch_cpu"])
        if torch.cuda.is_available() and "torch_cuda" in tensors["rng"]:
            torch.cuda.set_rng_state(tensors["rng"]["torch_cuda"])
        step, nonfinite_steps = int(saved["step"]), int(saved["nonfinite_steps"])
        say(f"resumed from {folder} at step {step} ({saved['processes']} -> {processes} processes)")

    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    trained = [p for p in unwrapped.parameters() if p.requires_grad]  # the same tensors, on `device`
    ema = EMAModel(trained, decay=config.ema_decay)  # after prepare: on the parameters' device
    if saved is not None:
        ema_state = dict(saved["ema"], shadow_params=[tensors["ema"][name] for name in names])
        ema.load_state_dict(ema_state)
        ema.to(device=device)
    criterion.to(device)
    say(
        f"model {model_config.name}: {sum(p.numel() for p in trained):,} trained parameters "
        f"({'LoRA' if unwrapped.has_lora else 'full'}), {pixels_per_token} px per token, {processes} process(es) "
        f"x batch {config.batch_size}, device {device}, precision {precision}"
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
    validation_pairs = pairs.validation_pairs() if main_process else []

    # ---- logging (main process only) ----
    writer = log_file = log = None
    if main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))
        log_path = out / "log.csv"
        if log_path.is_file():  # a resumed run drops rows logged after its checkpoint (they are redone)
            with open(log_path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
            with open(log_path, "w", newline="") as handle:
                rewrite = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")
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

    def validation_row() -> dict[str, Any]:
        ema.store(trained)
        ema.copy_to(trained)
        scores = validate(unwrapped, validation_pairs, device, config.stage)
        ema.restore(trained)
        return {"step": step, "elapsed_s": time.time() - start, **scores}

    def checkpoint() -> None:
        if main_process:
            optimizer_tensors, optimizer_json = _optimizer_tensors(optimizer.optimizer, names)
            rng = {"torch_cpu": torch.get_rng_state()}
            if torch.cuda.is_available():
                rng["torch_cuda"] = torch.cuda.get_rng_state()
            ema_json = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
            tensors = {
                "trained": dict(zip(names, trained, strict=True)),
                "ema": dict(zip(names, ema.shadow_params, strict=True)),
                "optimizer": optimizer_tensors,
                "rng": rng,
            }
            state = {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step, "processes": processes,
                "nonfinite_steps": nonfinite_steps, "config": config.to_dict(), "trained": names,
                "lora": unwrapped.has_lora, "optimizer": optimizer_json, "scheduler": scheduler.state_dict(),
                "ema": ema_json,
            }  # fmt: skip
            save_checkpoint(out, tensors, state)
        accelerator.wait_for_everyone()

    def any_process(flag: bool) -> bool:
        """True when ``flag`` holds on any process (a collective: every process must call it)."""
        return bool(accelerator.gather(torch.tensor([float(flag)], device=device)).max() > 0)

    # ---- the loop ----
    start = time.time()
    window_start, window_images = time.time(), 0
    first_step = step
    if step == 0 and main_process:
        write_row(validation_row())
    while step < config.max_steps:
        out_of_time = config.max_minutes is not None and time.time() - start > 60 * config.max_minutes
        if any_process(out_of_time):
            say(f"wall-time budget of {config.max_minutes} min reached at step {step}")
            break
        learning_rate = scheduler.get_last_lr()[-1]  # the transformer's group (the skip's, if separate, is first)
        lr_images, hr_images = pairs.batch(step, config.batch_size, rank=rank)
        if step == first_step:  # every process says which slice it drew (a multi-process run must differ)
            print(f"rank {rank}/{processes}: batch {step} sha256 {batch_digest(hr_images)}", flush=True)
        lr_images, hr_images = lr_images.to(device), hr_images.to(device)
        with accelerator.autocast():
            if config.stage == "vae":
                prediction = unwrapped.reconstruct(hr_images)
            else:
                prediction = model(lr_images, hr_images.shape[-2:])
        loss, parts = criterion(prediction, hr_images)
        optimizer.zero_grad(set_to_none=True)
        skip = any_process(not bool(torch.isfinite(loss.detach())))
        if not skip:
            accelerator.backward(loss)
            if config.grad_clip > 0:
                norm = accelerator.clip_grad_norm_(parameters, config.grad_clip)
            else:
                norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))
            skip = not bool(torch.isfinite(torch.as_tensor(norm)))  # gradients are already averaged: same everywhere
        if skip:
            optimizer.zero_grad(set_to_none=True)
            nonfinite_steps += 1
            say(f"step {step + 1}: non-finite loss or gradient, step skipped ({nonfinite_steps} so far)")
        else:
            optimizer.step()
            ema.step(trained)
        scheduler.step()
        step += 1
        window_images += config.batch_size * processes
        mean_loss = float(accelerator.reduce(loss.detach().float(), "mean"))
        if main_process and (skip or step % config.log_every == 0 or step == config.max_steps):
            rate = window_images / max(1e-9, time.time() - window_start)
            window_start, window_images = time.time(), 0
            row = {
                "step": step,
                "elapsed_s": time.time() - start,
                "images_per_s": rate,
                "learning_rate": learning_rate,
                "loss": mean_loss,
                "loss_l2": parts.get("l2"),
                "loss_lpips": parts.get("lpips"),
                "loss_ap": parts.get("ap"),
                "nonfinite_steps": nonfinite_steps,
            }
            write_row(row)
            say(f"step {step}/{config.max_steps} loss {mean_loss:.5f} l2 {parts['l2']:.5f} {rate:.1f} img/s")
        if nonfinite_steps > config.max_nonfinite_steps:
            raise TrainingStopped(
                f"{nonfinite_steps} non-finite steps (more than max_nonfinite_steps={config.max_nonfinite_steps}) by "
                f"step {step}; lower learning_rate or check the data; {out / 'checkpoint'} holds the last good state"
            )
        if main_process and (step % config.validate_every == 0 or step == config.max_steps):
            row = validation_row()
            write_row(row)
            say(f"step {step}: validation PSNR {row['val_psnr']:.2f} dB (bicubic {row['val_bicubic_psnr']:.2f}), "
                f"PAS {row['val_pas']:.4f} (bicubic {row['val_bicubic_pas']:.4f})")  # fmt: skip
        if step % config.checkpoint_every == 0 and step < config.max_steps:
            checkpoint()

    checkpoint()
    final = out / "final"
    if main_process:
        ema.store(trained)
        ema.copy_to(trained)
        if config.stage == "vae":
            shift, scale = latent_statistics(unwrapped, pairs, config)
            unwrapped.vae.register_to_config(shift_factor=shift, scaling_factor=scale)
            say(f"VAE latents: mean {shift:.4f}, scaling_factor {scale:.4f} (1 / std)")
        unwrapped.save_pretrained(final, save_vae=True if config.save_frozen_vae else None)
        ema.restore(trained)
        writer.close()
        log_file.close()
    accelerator.wait_for_everyone()
    say(f"done: {step} steps in {time.time() - start:.0f} s; EMA model in {final}")
    accelerator.end_training()
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
