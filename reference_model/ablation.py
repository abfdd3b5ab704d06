"""The RFR / L_AP ablation: train arms over seeds, evaluate them into raw JSON, regenerate the page from it.

    python -m reference_model.ablation                       # = report: docs/reference_model/ablation.md + plots
    python -m reference_model.ablation plan                  # the train/evaluate commands of every arm and seed
    python -m reference_model.ablation train --arm ap-0 --seed 0 [--max-steps N] [--data DIR]   # resumable
    python -m reference_model.ablation evaluate --arm ap-0 --seed 0 [--data DIR]      # -> raw/<arm>-s<seed>.json
    python -m reference_model.ablation rfr-sweep --seed 0 [--sizes 512,1024,2048,4096] # -> raw/rfr-sweep-s0.json
    python -m reference_model.ablation summarise NAME=RESULTS_DIR ...                 # benchmark runs -> table

Arms (:data:`ARMS`; trainer overrides on top of :data:`BASE_CONFIG`, seeds :data:`SEEDS`):

- ``rfr-base``: the RFR study's base model, trained with RFR off at small crops (128 px = 4x4 tokens). The RFR
  question is then asked *at inference only* (``rfr-sweep``): every mode and factor of :data:`RFR_SWEEP` on the
  same weights, at output sizes from 512 px to 4096 px, PAS and dPAS against tokens per side. (Position
  interpolation, the issue's comparison, is not an RFR mode of ``reference_model/rope.py`` yet.)
- ``ap-0``, ``ap-low``, ``ap-high``: the L_AP study, at 256 px crops (so lags 32..128 px, 4 lattice multiples of
  the 32 px token pitch, fit; the metric's own rule, ``lattice_multiples``); ``ap_weight`` 0, and two weights
  meant to give L_AP about 10 % and 30 % of L2's gradient norm (the trainer logs both losses; the ratio measured
  on the first runs is recorded in the raw files' ``train_log`` and must be checked before the full runs).

Every arm uses RoPE axes (8, 28, 28) (head dim 64) so the base matters for the 28 frequency pairs per spatial axis.
Runs go to ``runs/ablation/<arm>-s<seed>/`` (checkpoints: a cut run resumes). ``evaluate`` writes per-image PSNR,
PAS and dPAS (PAS(SR) - PAS(HR), the benchmark's definition) on the held-out crops and, with ``--suite``, on a
built 4K suite. ``report`` reads only the committed raw files under ``docs/reference_model/ablation/raw/``:
mean +- standard deviation over seeds per arm, paired per-image differences against the reference arm (the same
images and seed), and SVG plots (no plotting library needed).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
DOC_DIR = REPOSITORY / "docs" / "reference_model"
RAW_DIR = DOC_DIR / "ablation" / "raw"
PLOT_DIR = DOC_DIR / "ablation" / "plots"
RUNS_DIR = Path("runs") / "ablation"
SEEDS = (0, 1, 2)
BASE_CONFIG = "cpu-skip-pf"
COMMON = {
    "model.transformer.attention_head_dim": 64,
    "model.transformer.axes_dims_rope": [8, 28, 28],
    "validation_count": 8,
    "validation_crop_size": 512,
    "validate_every": 250,
    "checkpoint_every": 250,
    "ap_weight": 0.0,
    "model.rfr_mode": "none",
    "model.rfr_scale": 1.0,
}
SMALL = {"crop_size": 128, "batch_size": 6, "max_steps": 1000}  # 4x4 tokens, from scratch
LARGE = {"crop_size": 256, "batch_size": 4, "max_steps": 300, "learning_rate": 5.0e-4, "warmup_steps": 20,
         "init_from": "{runs}/rfr-base-s{seed}/final"}  # 8x8 tokens, fine-tuned from rfr-base  # fmt: skip
ARMS: dict[str, dict[str, Any]] = {
    "rfr-base": dict(SMALL),
    "skip-off": {**SMALL, "model.bicubic_skip": False, "model.skip_prefilter": 0},
    "prefilter-off": {**SMALL, "model.skip_prefilter": 0},
    "ft-none": dict(LARGE),
    "ft-rfr": {**LARGE, "model.rfr_mode": "{best_rfr_mode}", "model.rfr_scale": "{best_rfr_scale}"},
    "ap-low": {**LARGE, "ap_weight": "{ap_low}"},
    "ap-high": {**LARGE, "ap_weight": "{ap_high}"},
}
REFERENCE_ARM = {"skip-off": "rfr-base", "prefilter-off": "rfr-base", "ft-rfr": "ft-none", "ap-low": "ft-none",
                 "ap-high": "ft-none"}  # fmt: skip
AP_FRACTIONS = {"ap_low": 0.1, "ap_high": 0.3}  # L_AP's gradient norm as a fraction of L2's
SWEEP_ARMS = ("rfr-base", "skip-off")  # the shipped recipe, and the paper's design (z_hr decoded directly)
SWEEP_NOTES = {
    "rfr-base": "the shipped recipe: the transformer's decoded change enters through the skip gate",
    "skip-off": "the paper's design: the transformer's latents are decoded directly, so RFR acts on the whole output",
}
RFR_SWEEP = [("none", 1.0)] + [(mode, s) for mode in ("base", "ntk", "pi") for s in (0.5, 2.0, 8.0, 32.0)]
SIZES = (512, 1024, 2048, 4096)
SUITE, SUITE_COUNT = "4ksr-syn", 2  # every arm is also scored on the first two whole 4K images of this suite


# ---- training and evaluation ---------------------------------------------------------------------------------


def best_rfr(raw_dir: Path = RAW_DIR) -> tuple[str, float]:
    """The RFR setting (not ``none``) with the lowest mean ``|dPAS|`` at the largest swept size, over every seed
    and image of the committed sweeps of ``skip-off`` (where the transformer's latents are decoded directly, so
    RFR acts on the whole output; the shipped recipe's small skip gate leaves it almost no effect), or of
    ``rfr-base`` when there is none: the setting the ``ft-rfr`` arm fine-tunes with."""
    from op4ksr_bench.errors import UsageError

    _, sweep = load_raw(raw_dir)
    if not sweep:
        raise UsageError(
            f"no RFR sweep in {raw_dir}: run `python -m reference_model.ablation rfr-sweep --seed 0` first"
        )
    largest = max(row["size"] for row in sweep)
    grouped: dict[tuple[str, float], list[float]] = collections.defaultdict(list)
    for row in sweep:
        if row["size"] == largest and row["mode"] != "none":
            grouped[(row["mode"], float(row["scale"]))].append(abs(row["dpas"]))
    return min(grouped, key=lambda key: (statistics.fmean(grouped[key]), key))


def ap_weights(raw_dir: Path = RAW_DIR) -> dict[str, float]:
    """``{"ap_low": w, "ap_high": w}``: the L_AP weights whose gradient norm is :data:`AP_FRACTIONS` of L2's, from
    the committed ``grad-ratio.json`` (``python -m reference_model.ablation grad-ratio``)."""
    from op4ksr_bench.errors import UsageError

    path = Path(raw_dir) / "grad-ratio.json"
    if not path.is_file():
        raise UsageError(f"{path} is missing: run `python -m reference_model.ablation grad-ratio` first")
    ratio = float(json.loads(path.read_text())["ratio"])
    return {name: float(f"{fraction / ratio:.3g}") for name, fraction in AP_FRACTIONS.items()}


def arm_overrides(arm: str, seed: int | None = None, runs: Path = RUNS_DIR, raw_dir: Path = RAW_DIR) -> dict[str, Any]:
    """The trainer overrides of ``arm`` with its placeholders filled: ``{runs}``/``{seed}`` (the rfr-base run a
    fine-tuning arm starts from), ``{best_rfr_mode}``/``{best_rfr_scale}`` (:func:`best_rfr`) and
    ``{ap_low}``/``{ap_high}`` (:func:`ap_weights`); unfilled when ``seed`` is None (for display)."""
    from op4ksr_bench.errors import UsageError

    if arm not in ARMS:
        raise UsageError(f"unknown arm {arm!r}; arms: {', '.join(ARMS)}")
    values = {**COMMON, **ARMS[arm]}
    if seed is None:
        return values
    filled = {}
    for key, value in values.items():
        if isinstance(value, str) and "{" in value:
            if "{best_rfr" in value:
                mode, factor = best_rfr(raw_dir)
                value = mode if value == "{best_rfr_mode}" else factor
            elif value in ("{ap_low}", "{ap_high}"):
                value = ap_weights(raw_dir)[value.strip("{}")]
            else:
                value = value.format(runs=Path(runs).as_posix(), seed=seed)
        filled[key] = value
    return filled


def run_folder(arm: str, seed: int, runs: Path = RUNS_DIR) -> Path:
    return Path(runs) / f"{arm}-s{seed}"


def train_arguments(
    arm: str,
    seed: int,
    data: Path | None,
    max_steps: int | None,
    runs: Path,
    extra: list[str] = (),
    raw_dir: Path = RAW_DIR,
) -> list[str]:
    """``reference_model/train.py`` arguments of one arm and seed (nested model keys as YAML mappings); ``extra``
    ``KEY=VALUE`` overrides go last (tests use them for tiny runs)."""
    values = arm_overrides(arm, seed, runs, raw_dir)
    model_transformer = {k.split(".", 2)[2]: v for k, v in values.items() if k.startswith("model.transformer.")}
    arguments = ["--config", BASE_CONFIG, "--seed", str(seed), "--out", str(run_folder(arm, seed, runs))]
    if data:
        arguments += ["--data", str(data)]
    for key, value in values.items():
        if key.startswith("model.transformer."):
            continue
        if key == "max_steps" and max_steps is not None:
            value = max_steps
        arguments += ["--set", f"{key}={json.dumps(value)}"]
    if model_transformer:
        from reference_model.configs import load_config_file

        transformer = {**load_config_file(BASE_CONFIG)["model"]["transformer"], **model_transformer}
        arguments += ["--set", f"model.transformer={json.dumps(transformer)}"]
    for item in extra:
        arguments += ["--set", item]
    return arguments


def evaluate_model(model, pairs) -> dict[str, dict[str, float]]:
    """Per-image PSNR, PAS and dPAS of ``model`` on ``[(id, lr, hr)]`` pairs (PAS over the periods that fit),
    through the benchmark's own ``op4ksr`` method (its reflect padding to the token pitch, crop back)."""
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod

    return evaluate_method(Op4ksrMethod.from_model(model, "cpu", "float32"), pairs)


def evaluate_method(method, pairs) -> dict[str, dict[str, float]]:
    """Per-image PSNR, PAS and dPAS of a benchmark method's ``upscale`` on ``[(id, lr, hr)]`` pairs."""
    import torch

    from op4ksr_bench.metrics.periodicity import DEFAULT_PERIODS, lattice_multiples, pas
    from reference_model.train import psnr

    rows = {}
    with torch.no_grad():
        for image_id, lr, hr in pairs:
            periods = [p for p in DEFAULT_PERIODS if lattice_multiples(hr.shape[-2], hr.shape[-1], p) >= 1]
            prediction = method.upscale(lr)
            value = pas(prediction, periods).value
            rows[image_id] = {"psnr": psnr(prediction, hr), "pas": value, "dpas": value - pas(hr, periods).value}
    return rows


def bicubic_reference(seed: int, data: Path | None, raw_dir: Path = RAW_DIR, suite: str = SUITE,
                      count: int = SUITE_COUNT) -> Path:  # fmt: skip
    """The benchmark's ``bicubic`` on the same held-out crops (those of ``seed``) and 4K images as the arms:
    ``raw/bicubic-s<seed>.json`` (arm ``bicubic``), the baseline row of the page's tables."""
    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.methods.interpolation import BicubicMethod
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs

    settings = {**COMMON, **SMALL}
    pairs = TrainingPairs(
        Path(data) if data else data_dir(), crop_size=int(settings["crop_size"]), seed=seed,
        validation_count=int(settings["validation_count"]), validation_crop_size=int(settings["validation_crop_size"]),
    ).validation_pairs()  # fmt: skip
    method = BicubicMethod(scale=4)
    payload = {"arm": "bicubic", "seed": seed, "steps": 0, "overrides": {}, "train_log": [],
               "heldout": evaluate_method(method, pairs), "suite": suite,
               "fourk": evaluate_method(method, suite_pairs(data, suite, count))}  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"bicubic-s{seed}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def suite_pairs(data: Path | None, suite: str = SUITE, count: int = SUITE_COUNT, size: int | None = None):
    """The first ``count`` images (by id) of a built 4K suite as ``(id, lr, hr)``: whole (``size`` None) or the
    centre ``size x size`` HR crop with its LR."""
    from op4ksr_bench.data.manifest import BuiltSuite
    from op4ksr_bench.imageio import read_image
    from op4ksr_bench.paths import data_dir
    from reference_model.data import _to_chw

    built = BuiltSuite.open(Path(data) if data else data_dir(), suite)
    scale = int(built.spec.scale)
    entries = sorted((e for e in built.entries if e.get("lr") and e.get("hr")), key=lambda e: e["id"])[:count]
    pairs = []
    for entry in entries:
        lr, hr = read_image(built.lr_path(entry)), read_image(built.hr_path(entry))
        if size is not None:
            side = min(size, hr.shape[0], hr.shape[1]) // (8 * scale) * (8 * scale)
            top = (hr.shape[0] - side) // (2 * scale) * scale
            left = (hr.shape[1] - side) // (2 * scale) * scale
            hr = hr[top : top + side, left : left + side]
            lr = lr[top // scale : (top + side) // scale, left // scale : (left + side) // scale]
        pairs.append((entry["id"], _to_chw(lr)[None], _to_chw(hr)[None]))
    return pairs


def evaluate_arm(arm: str, seed: int, data: Path | None, runs: Path, raw_dir: Path = RAW_DIR,
                 suite: str = SUITE, count: int = SUITE_COUNT) -> Path:  # fmt: skip
    """Evaluate ``runs/ablation/<arm>-s<seed>/final`` on its held-out crops and on the first ``count`` whole images
    of ``suite`` (4K); write ``raw/<arm>-s<seed>.json``."""
    import csv

    import yaml

    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.errors import WeightsMissingError
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs
    from reference_model.model import OP4KSR

    folder = run_folder(arm, seed, runs)
    if not (folder / "final").is_dir():
        raise WeightsMissingError(f"{folder / 'final'} is missing: train it first (`python -m "
                                  f"reference_model.ablation train --arm {arm} --seed {seed}`)")  # fmt: skip
    model = OP4KSR.from_pretrained(folder / "final").eval()
    values = yaml.safe_load((folder / "config.yaml").read_text())  # what the run was trained with
    pairs = TrainingPairs(
        Path(data) if data else data_dir(), crop_size=int(values["crop_size"]), seed=seed,
        validation_count=int(values["validation_count"]), validation_crop_size=int(values["validation_crop_size"]),
    ).validation_pairs()  # fmt: skip
    with open(folder / "log.csv", newline="") as handle:
        log = [row for row in csv.DictReader(handle) if row.get("loss")]
    payload = {
        "arm": arm, "seed": seed, "overrides": {k: v for k, v in values.items() if k != "model"},
        "model": values["model"], "steps": int(log[-1]["step"]) if log else 0,
        "train_log": [{k: row[k] for k in ("step", "loss_l2", "loss_ap")} for row in log[:: max(1, len(log) // 50)]],
        "heldout": evaluate_model(model, pairs),
        "suite": suite, "fourk": evaluate_model(model, suite_pairs(data, suite, count)),
    }  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"{arm}-s{seed}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def rfr_sweep(seed: int, data: Path | None, runs: Path, sizes=SIZES, raw_dir: Path = RAW_DIR, count: int = 2,
              arm: str = "rfr-base") -> Path:  # fmt: skip
    """Inference-only RFR sweep on the ``arm`` model (:data:`SWEEP_ARMS`) of ``seed``: every (mode, factor) of
    :data:`RFR_SWEEP` at every output size: 512 and 1024 px from ``count`` held-out training images (degraded by
    the training pipeline), 2048 px as the centre crops of ``count`` images of the 4K suite (its own LR), and
    4096 as the first whole 3840x2160 image of that suite (120 x 68 tokens)."""
    import numpy as np

    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.data.degradations import degrade, seed_for
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs, _to_chw
    from reference_model.model import OP4KSR

    folder = run_folder(arm, seed, runs) / "final"
    pairs = TrainingPairs(Path(data) if data else data_dir(), crop_size=128, seed=seed, validation_count=count,
                          validation_crop_size=128)  # fmt: skip
    inputs = {}
    for size in sizes:
        if size <= 1024:
            crops = []
            for entry in pairs.validation_entries:
                image = pairs._image(entry)
                side = min(size, image.shape[0] // 32 * 32, image.shape[1] // 32 * 32)
                top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
                crop = np.ascontiguousarray(image[top : top + side, left : left + side])
                lr, _ = degrade(crop, 4, pairs.degradation, seed=seed_for(seed, entry["id"]))
                crops.append((entry["id"], _to_chw(lr)[None], _to_chw(crop)[None]))
            inputs[size] = crops
        elif size < 3840:
            inputs[size] = suite_pairs(data, SUITE, count, size)
        else:
            inputs[size] = suite_pairs(data, SUITE, 1)
    rows = []
    for mode, factor in RFR_SWEEP:
        model = OP4KSR.from_pretrained(folder, overrides={"rfr_mode": mode, "rfr_scale": factor}).eval()
        for size, crops in inputs.items():
            for image_id, values in evaluate_model(model, crops).items():
                height, width = crops[0][2].shape[-2:]
                side = max(height, width)  # the whole 4K image: 3840 (120 x 68 tokens)
                rows.append({"mode": mode, "scale": factor, "size": min(size, side), "height": height, "width": width,
                             "tokens_per_side": side // 32, "image": image_id, **values})  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / (f"rfr-sweep-s{seed}.json" if arm == "rfr-base" else f"rfr-sweep-{arm}-s{seed}.json")
    atomic_write_text(path, json.dumps({"arm": arm, "seed": seed, "rows": rows}, indent=1, sort_keys=True) + "\n")
    return path


def grad_ratio(data: Path | None, runs: Path, raw_dir: Path = RAW_DIR, seed: int = 0, batches: int = 8) -> Path:
    """Gradient norms of L2 and of L_AP (unit weight) over the trained parameters of ``rfr-base`` (seed ``seed``)
    on ``batches`` training batches of the fine-tuning arms' size; ``ratio`` = mean L_AP norm / mean L2 norm.
    The L_AP arms' weights are ``fraction / ratio`` (:data:`AP_FRACTIONS`)."""
    import torch
    import torch.nn.functional as F

    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs
    from reference_model.losses import ap_loss
    from reference_model.model import OP4KSR

    model = OP4KSR.from_pretrained(run_folder("rfr-base", seed, runs) / "final")
    model.train()
    trained = model.trainable_parameters()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in trained:
        parameter.requires_grad_(True)
    large = {**COMMON, **LARGE}
    pairs = TrainingPairs(Path(data) if data else data_dir(), crop_size=int(large["crop_size"]), seed=seed)
    norms = []
    for batch in range(batches):
        lr, hr = pairs.batch(100_000 + batch, int(large["batch_size"]))
        prediction = model(lr, hr.shape[-2:])
        row = {}
        for name, loss in (("l2", F.mse_loss(prediction, hr)), ("ap", ap_loss(prediction, hr, (16, 32)))):
            grads = torch.autograd.grad(loss, trained, retain_graph=True, allow_unused=True)
            row[name] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))
            row[f"loss_{name}"] = float(loss.detach())
        norms.append(row)
    ratio = statistics.fmean(r["ap"] for r in norms) / statistics.fmean(r["l2"] for r in norms)
    payload = {"seed": seed, "crop_size": large["crop_size"], "batch_size": large["batch_size"], "batches": norms,
               "ratio": ratio, "fractions": AP_FRACTIONS,
               "weights": {k: float(f"{f / ratio:.3g}") for k, f in AP_FRACTIONS.items()}}  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / "grad-ratio.json"
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


# ---- the report ----------------------------------------------------------------------------------------------


def load_raw(raw_dir: Path = RAW_DIR) -> tuple[dict[str, dict[int, dict]], list[dict]]:
    """``({arm: {seed: payload}}, rfr-sweep rows)`` from the committed raw files (``grad-ratio.json`` aside)."""
    arms: dict[str, dict[int, dict]] = collections.defaultdict(dict)
    sweep: list[dict] = []
    for path in sorted(Path(raw_dir).glob("*.json")):
        payload = json.loads(path.read_text())
        if path.name.startswith("rfr-sweep-"):
            sweep += [dict(row, seed=payload["seed"], arm=payload.get("arm", "rfr-base")) for row in payload["rows"]]
        elif "arm" in payload:
            arms[payload["arm"]][int(payload["seed"])] = payload
    return dict(arms), sweep


def paired(arms: dict[str, dict[int, dict]], arm: str, reference: str, split: str, key: str) -> list[float]:
    """Per-image differences ``arm - reference`` of ``key`` over the seeds both have (same images, same seed)."""
    differences = []
    for seed, payload in arms.get(arm, {}).items():
        other = arms.get(reference, {}).get(seed)
        if other:
            for image, row in payload.get(split, {}).items():
                if image in other.get(split, {}):
                    differences.append(row[key] - other[split][image][key])
    return differences


def arm_table(arms: dict[str, dict[int, dict]], split: str) -> list[str]:
    """Mean over images per seed, then mean +- sd over seeds; paired per-image differences against bicubic and
    against the arm's reference arm."""
    lines = ["| arm | seeds | steps | PSNR (dB) | PAS | dPAS | paired dPSNR vs bicubic (dB) | paired dPSNR (dB) "
             "| paired d(dPAS) | vs |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm in [name for name in ("bicubic", *ARMS) if name in arms]:
        seeds = arms[arm]
        per_seed = {key: [statistics.fmean(r[key] for r in p[split].values()) for p in seeds.values() if p.get(split)]
                    for key in ("psnr", "pas", "dpas")}  # fmt: skip
        against = REFERENCE_ARM.get(arm, "")
        dpsnr, ddpas = (paired(arms, arm, against, split, key) for key in ("psnr", "dpas"))
        over_bicubic = paired(arms, arm, "bicubic", split, "psnr") if arm != "bicubic" else []
        lines.append(
            f"| {arm} | {len(seeds)} | {', '.join(str(p['steps']) for p in seeds.values())} "
            f"| {mean_sd(per_seed['psnr'])} | {mean_sd(per_seed['pas'])} | {mean_sd(per_seed['dpas'])} "
            f"| {mean_sd(over_bicubic) if over_bicubic else 'n/a'} "
            f"| {mean_sd(dpsnr) if dpsnr else 'n/a'} | {mean_sd(ddpas) if ddpas else 'n/a'} | {against or '-'} |"
        )
    return lines


def sweep_table(sweep: list[dict]) -> list[str]:
    """Per (mode, factor): mean PSNR / dPAS over seeds and images at every size."""
    sizes = sorted({row["size"] for row in sweep})
    grouped: dict[tuple[str, float, int], list[dict]] = collections.defaultdict(list)
    for row in sweep:
        grouped[(row["mode"], float(row["scale"]), row["size"])].append(row)
    header = " | ".join(f"{size} px: PSNR / dPAS" for size in sizes)
    lines = [f"| RFR | {header} |", "|---|" + "---|" * len(sizes)]
    for mode, factor in RFR_SWEEP:
        cells = []
        for size in sizes:
            rows = grouped.get((mode, float(factor), size), [])
            cells.append(f"{statistics.fmean(r['psnr'] for r in rows):.2f} / "
                         f"{statistics.fmean(r['dpas'] for r in rows):+.4f}" if rows else "n/a")  # fmt: skip
        lines.append(f"| {mode} s={factor:g} | " + " | ".join(cells) + " |")
    seeds = sorted({row["seed"] for row in sweep})
    lines += ["", f"Seeds {', '.join(map(str, seeds))}; images per size: " + ", ".join(
        f"{size} px: {len({r['image'] for r in sweep if r['size'] == size})}" for size in sizes) + "."]  # fmt: skip
    return lines


def mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4g} (1 value)"
    return f"{statistics.fmean(values):.4g} +- {statistics.stdev(values):.2g}"


def svg_lines(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
              log_x: bool = False) -> str:  # fmt: skip
    """A small self-contained SVG line plot (one polyline per series, with a legend)."""
    width, height, pad = 640, 400, 60
    points = [point for values in series.values() for point in values]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="80"><text x="10" y="40">{title}: ' \
               "no data</text></svg>\n"  # fmt: skip
    fx = (lambda v: math.log2(v)) if log_x else (lambda v: v)
    xs, ys = [fx(x) for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def place(x: float, y: float) -> str:
        px = pad + (fx(x) - x0) / (x1 - x0) * (width - 2 * pad)
        py = height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)
        return f"{px:.1f},{py:.1f}"

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
    body = [f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16">{title}</text>',
            f'<text x="{width / 2}" y="{height - 16}" text-anchor="middle">{x_label}</text>',
            f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" text-anchor="middle">'
            f"{y_label}</text>",
            f'<text x="{pad}" y="{height - pad + 16}" font-size="11">{min(x for x, _ in points):g}</text>',
            f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" text-anchor="end">'
            f'{max(x for x, _ in points):g}</text>',
            f'<text x="{pad - 4}" y="{height - pad}" font-size="11" text-anchor="end">{y0:.3g}</text>',
            f'<text x="{pad - 4}" y="{pad}" font-size="11" text-anchor="end">{y1:.3g}</text>',
            f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" '
            'stroke="#999"/>']  # fmt: skip
    for index, (name, values) in enumerate(sorted(series.items())):
        colour = colours[index % len(colours)]
        path = " ".join(place(x, y) for x, y in sorted(values))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body.append(f'<text x="{width - pad + 4}" y="{pad + 14 * index}" font-size="11" fill="{colour}">{name}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 120}" height="{height}" font-family="sans-serif">'
            + "".join(body) + "</svg>\n")  # fmt: skip


def sweep_series(sweep: list[dict], key: str) -> dict[str, list[tuple[float, float]]]:
    """``{mode x factor: [(tokens per side, mean of key over images and seeds)]}``."""
    grouped: dict[tuple[str, float, int], list[float]] = collections.defaultdict(list)
    for row in sweep:
        grouped[(row["mode"], row["scale"], row["tokens_per_side"])].append(row[key])
    series: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for (mode, factor, tokens), values in grouped.items():
        series[f"{mode} s={factor:g}"].append((tokens, statistics.fmean(values)))
    return dict(series)


def report(raw_dir: Path = RAW_DIR, doc: Path = DOC_DIR / "ablation.md", plot_dir: Path = PLOT_DIR) -> Path:
    """Regenerate the ablation page and its plots from the raw files only."""
    from op4ksr_bench.atomic import atomic_write_text

    arms, sweep = load_raw(raw_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    relative = plot_dir.relative_to(doc.parent).as_posix()
    sweep_lines = []
    for arm in SWEEP_ARMS:
        rows = [row for row in sweep if row["arm"] == arm]
        prefix = "rfr-sweep" if arm == "rfr-base" else f"rfr-sweep-{arm}"
        for key in ("psnr", "pas", "dpas"):
            svg = svg_lines(sweep_series(rows, key), f"RFR sweep on {arm} (inference only): {key}",
                            "tokens per side", key, log_x=True)  # fmt: skip
            atomic_write_text(plot_dir / f"{prefix}-{key}.svg", svg)
        sweep_lines += [
            f"### On `{arm}` ({SWEEP_NOTES[arm]})",
            "",
            *(sweep_table(rows) if rows else ["No sweep results yet."]),
            "",
            " ".join(f"![{key}]({relative}/{prefix}-{key}.svg)" for key in ("psnr", "pas", "dpas")),
            "",
        ]
    curves = {f"{arm} s{seed}": [(float(r["step"]), float(r["loss_l2"])) for r in p["train_log"] if r["loss_l2"]]
              for arm, seeds in arms.items() for seed, p in seeds.items()}  # fmt: skip
    atomic_write_text(plot_dir / "train-l2.svg", svg_lines(curves, "training L2", "step", "L2"))
    ratio_path = Path(raw_dir) / "grad-ratio.json"
    ratio = json.loads(ratio_path.read_text()) if ratio_path.is_file() else None
    raw_name = raw_dir.relative_to(REPOSITORY).as_posix() if raw_dir.is_relative_to(REPOSITORY) else raw_dir
    arm_lines = [f"- `{arm}`{' (reference: `' + REFERENCE_ARM[arm] + '`)' if arm in REFERENCE_ARM else ''}: "
                 + ", ".join(f"{k}={v}" for k, v in ARMS[arm].items()) for arm in ARMS]  # fmt: skip
    lines = [
        "# Ablation: the bicubic skip, RFR and L_AP (regenerated by `python -m reference_model.ablation`)",
        "",
        "This page is written by `python -m reference_model.ablation` from the raw results committed in",
        f"`{raw_name}` (one JSON per arm and seed, one per RFR sweep, `grad-ratio.json`); do not edit it by hand.",
        "Commands: `python -m reference_model.ablation plan`. Every arm is the `"
        + BASE_CONFIG
        + "` recipe (frozen pretrained VAE, bicubic skip with its prefilter) with RoPE axes (8, 28, 28)",
        "(28 frequency pairs per spatial axis, head dimension 64), RFR off unless stated, L_AP off unless stated, "
        f"seeds {', '.join(map(str, SEEDS))}:",
        "",
        *arm_lines,
        "",
        "PAS is the benchmark's periodic-artifact score of the output; dPAS = PAS(SR) - PAS(HR) (the artefact the "
        "model adds). Paired differences are per image and seed against the reference arm.",
        "",
        "## Arms on held-out crops (8 training-suite images held out of training, 512 px centre crops)",
        "",
        "`bicubic` is the benchmark's bicubic on the same crops and images (`python -m reference_model.ablation "
        "bicubic --seed N`).",
        "",
        *(arm_table(arms, "heldout") if arms else ["No arm has raw results yet."]),
        "",
        f"## Arms at 4K (the first {SUITE_COUNT} images of `{SUITE}`, 3840x2160, 120 x 68 tokens)",
        "",
        *(arm_table(arms, "fourk") if arms else ["No arm has raw results yet."]),
        "",
        "## RFR at inference only, on RFR-off models trained at 4 x 4 tokens",
        "",
        *sweep_lines,
        "## L_AP weights",
        "",
        (
            f"Gradient norms over the trained parameters of `rfr-base` seed {ratio['seed']} on {len(ratio['batches'])} "
            f"batches of {ratio['batch_size']} x {ratio['crop_size']} px: ||grad L_AP|| / ||grad L2|| = "
            f"{ratio['ratio']:.4g}, so `ap_weight` {ratio['weights']['ap_low']:g} (`ap-low`) and "
            f"{ratio['weights']['ap_high']:g} (`ap-high`) give L_AP {AP_FRACTIONS['ap_low']:.0%} and "
            f"{AP_FRACTIONS['ap_high']:.0%} of L2's gradient norm at the start of fine-tuning."
            if ratio
            else "`grad-ratio.json` is not there yet."
        ),
        "",
        f"![training L2]({relative}/train-l2.svg)",
        "",
        "## Verdict",
        "",
        *verdict(arms, sweep),
        "",
    ]
    atomic_write_text(doc, "\n".join(lines))
    return doc


def _compare(differences: list[float], lower_word: str, higher_word: str) -> tuple[str, float, float]:
    mean = statistics.fmean(differences)
    error = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else math.inf
    word = lower_word if mean + 2 * error < 0 else higher_word if mean - 2 * error > 0 else "does not change"
    return word, mean, 2 * error


def verdict(arms: dict[str, dict[int, dict]], sweep: list[dict]) -> list[str]:
    """Plain statements of what the raw results support (computed, not hand-written)."""
    needed = [arm for arm in ARMS if len(arms.get(arm, {})) < len(SEEDS)]
    parts = []
    if needed:
        parts.append(f"Incomplete: arms {', '.join(needed)} have fewer than {len(SEEDS)} seeds of raw results; "
                     "the statements below cover what is there.")  # fmt: skip
    for arm, reference in REFERENCE_ARM.items():
        for split, where in (("heldout", "on held-out crops"), ("fourk", "at 4K")):
            psnr_diff = paired(arms, arm, reference, split, "psnr")
            dpas_diff = paired(arms, arm, reference, split, "dpas")
            if len(psnr_diff) < 2:
                continue
            word, mean, error = _compare(psnr_diff, "lowers", "raises")
            line = (
                f"- `{arm}` {word} PSNR {where} against `{reference}` (paired mean {mean:+.3f} dB, 2 s.e. {error:.3f}"
            )
            word, mean, error = _compare(dpas_diff, "lowers", "raises")
            parts.append(f"{line}, n = {len(psnr_diff)}) and {word} dPAS ({mean:+.5f}, 2 s.e. {error:.5f}).")
    for arm in SWEEP_ARMS:
        rows_of_arm = [row for row in sweep if row["arm"] == arm]
        if not rows_of_arm:
            continue
        largest = max(row["size"] for row in rows_of_arm)
        base = {(r["seed"], r["image"]): r for r in rows_of_arm if r["size"] == largest and r["mode"] == "none"}
        for mode, factor in RFR_SWEEP[1:]:
            rows = [
                r for r in rows_of_arm if r["size"] == largest and r["mode"] == mode and float(r["scale"]) == factor
            ]
            pairs = [(r, base[(r["seed"], r["image"])]) for r in rows if (r["seed"], r["image"]) in base]
            if not pairs:
                continue
            differences = [abs(r["dpas"]) - abs(b["dpas"]) for r, b in pairs]
            psnr_mean = statistics.fmean(r["psnr"] - b["psnr"] for r, b in pairs)
            if len(pairs) < 2:
                parts.append(
                    f"- `{arm}`, RFR `{mode}` s={factor:g} at inference only, {largest} px, one image and seed: "
                    f"|dPAS| {differences[0]:+.5f} against RFR off, PSNR {psnr_mean:+.3f} dB (no spread yet)."
                )
                continue
            word, mean, error = _compare(differences, "lowers", "raises")
            parts.append(
                f"- `{arm}`, RFR `{mode}` s={factor:g} at inference only, {largest} px: {word} |dPAS| against RFR "
                f"off ({mean:+.5f}, 2 s.e. {error:.5f}, n = {len(pairs)}); PSNR {psnr_mean:+.3f} dB."
            )
    parts += [
        "",
        "What this can and cannot say: these are 7 M-parameter transformers on a frozen 1 M-parameter F16 VAE "
        "trained for minutes on a 2-core CPU, at 4-8 tokens per side against 120 x 68 at 4K. Testing the paper's "
        "claims at real scale needs FLUX.1-dev with SC-VAE (`reference_model/configs/flux-dev-f16.yaml`), LoRA "
        "fine-tuning at 1024-2048 px crops with and without RFR and L_AP on the same data and seeds, and the 4K "
        "suites scored per image with PAS and dPAS (the trainer's multi-GPU path, "
        "`docs/reference_model/README.md`).",
    ]
    return parts


def summarise(named: list[tuple[str, Path]]) -> str:
    """Markdown table of benchmark runs: one line per model with image count, mean metrics, dominant periods."""
    lines = [
        "| model | images | PSNR (dB) | SSIM | PAS | PAS at 16 px | PAS at 32 px "
        "| dominant period (px: images) | s / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, results in named:
        rows = []
        for path in sorted(Path(results).rglob("samples.jsonl")):
            rows += [row for row in map(json.loads, filter(str.strip, path.read_text().splitlines()))
                     if row.get("status") == "ok"]  # fmt: skip
        if not rows:
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue

        def mean(key: str, rows=rows) -> str:
            values = [row["metrics"][key] for row in rows if row["metrics"].get(key) is not None]
            return f"{statistics.fmean(values):.4g}" if values else "n/a"

        periods = collections.Counter(
            int(row["metrics"]["pas.period"]) for row in rows if "pas.period" in row["metrics"]
        )
        period_text = ", ".join(f"{period}: {count}" for period, count in sorted(periods.items())) or "n/a"
        seconds = statistics.fmean(row["seconds"] for row in rows)
        lines.append(
            f"| {name} | {len(rows)} | {mean('psnr')} | {mean('ssim')} | {mean('pas')} | {mean('pas.p16')} "
            f"| {mean('pas.p32')} | {period_text} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def plan() -> list[str]:
    """Every command of the ablation, in an order that works (the from-scratch arms, the sweep and the gradient
    ratio, then the fine-tuning arms that read them, then the report)."""
    command = "python -m reference_model.ablation"
    lines = []
    for arm in ("rfr-base", "skip-off", "prefilter-off"):
        lines += [f"{command} train --arm {arm} --seed {seed}" for seed in SEEDS]
    lines += [f"{command} rfr-sweep --seed {seed}" for seed in SEEDS]
    lines.append(f"{command} grad-ratio")
    for arm in ("ft-none", "ft-rfr", "ap-low", "ap-high"):
        lines += [f"{command} train --arm {arm} --seed {seed}" for seed in SEEDS]
    lines += [f"{command} evaluate --arm {arm} --seed {seed}" for arm in ARMS for seed in SEEDS]
    lines += [f"{command} bicubic --seed {seed}" for seed in SEEDS]
    lines.append(f"{command} report")
    return lines


def main(argv: list[str] | None = None) -> int:
    from op4ksr_bench.errors import Op4ksrError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("report", help="regenerate the page and plots from the raw results (the default)")
    commands.add_parser("plan", help="print the commands of every arm and seed")
    for name in ("train", "evaluate"):
        command = commands.add_parser(name)
        command.add_argument("--arm", required=True, choices=sorted(ARMS))
        command.add_argument("--seed", type=int, required=True)
        command.add_argument("--data", type=Path)
        command.add_argument("--runs", type=Path, default=RUNS_DIR)
        command.add_argument("--raw", type=Path, default=RAW_DIR, help="raw results folder")
        if name == "train":
            command.add_argument("--max-steps", type=int)
            command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    reference = commands.add_parser("bicubic", help="bicubic on the arms' held-out crops and 4K images -> raw")
    reference.add_argument("--seed", type=int, required=True)
    reference.add_argument("--data", type=Path)
    reference.add_argument("--raw", type=Path, default=RAW_DIR, help="raw results folder")
    ratio = commands.add_parser("grad-ratio", help="L_AP / L2 gradient norms on rfr-base -> raw/grad-ratio.json")
    ratio.add_argument("--data", type=Path)
    ratio.add_argument("--runs", type=Path, default=RUNS_DIR)
    ratio.add_argument("--raw", type=Path, default=RAW_DIR, help="raw results folder")
    sweep = commands.add_parser("rfr-sweep")
    sweep.add_argument("--seed", type=int, required=True)
    sweep.add_argument("--arm", default="rfr-base", choices=SWEEP_ARMS)
    sweep.add_argument("--data", type=Path)
    sweep.add_argument("--runs", type=Path, default=RUNS_DIR)
    sweep.add_argument("--raw", type=Path, default=RAW_DIR, help="raw results folder")
    sweep.add_argument("--sizes", default=",".join(map(str, SIZES)))
    table = commands.add_parser("summarise", help="benchmark runs -> Markdown table")
    table.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command in (None, "report"):
            print(report())
        elif args.command == "plan":
            for line in plan():
                print(line)
        elif args.command == "train":
            from reference_model.train import main as train_main

            return train_main(
                train_arguments(args.arm, args.seed, args.data, args.max_steps, args.runs, args.set, args.raw)
            )
        elif args.command == "evaluate":
            print(evaluate_arm(args.arm, args.seed, args.data, args.runs, args.raw))
        elif args.command == "bicubic":
            print(bicubic_reference(args.seed, args.data, args.raw))
        elif args.command == "grad-ratio":
            print(grad_ratio(args.data, args.runs, args.raw))
        elif args.command == "rfr-sweep":
            sizes = tuple(int(size) for size in args.sizes.split(","))
            print(rfr_sweep(args.seed, args.data, args.runs, sizes, args.raw, arm=args.arm))
        else:
            named = []
            for item in args.runs:
                name, sep, folder = item.partition("=")
                if not sep:
                    print(f"error: {item!r} is not NAME=RESULTS_DIR", file=sys.stderr)
                    return 2
                named.append((name, Path(folder)))
            print(summarise(named))
    except Op4ksrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
