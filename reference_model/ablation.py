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
BASE_CONFIG = "nano"
COMMON = {
    "model.transformer.attention_head_dim": 64,
    "model.transformer.axes_dims_rope": [8, 28, 28],
    "max_steps": 1500,
    "validation_count": 8,
    "validation_crop_size": 512,
    "validate_every": 250,
    "checkpoint_every": 250,
}
ARMS: dict[str, dict[str, Any]] = {
    "rfr-base": {"model.rfr_mode": "none", "model.rfr_scale": 1.0, "ap_weight": 0.0, "crop_size": 128},
    "ap-0": {"model.rfr_mode": "none", "ap_weight": 0.0, "crop_size": 256, "batch_size": 4},
    "ap-low": {"model.rfr_mode": "none", "ap_weight": 0.01, "crop_size": 256, "batch_size": 4},
    "ap-high": {"model.rfr_mode": "none", "ap_weight": 0.03, "crop_size": 256, "batch_size": 4},
}
REFERENCE_ARM = {"ap-low": "ap-0", "ap-high": "ap-0"}
RFR_SWEEP = [("none", 1.0)] + [(mode, s) for mode in ("base", "ntk") for s in (0.5, 2.0, 4.0, 8.0, 16.0, 32.0)]
SIZES = (512, 1024, 2048, 4096)


# ---- training and evaluation ---------------------------------------------------------------------------------


def arm_overrides(arm: str) -> dict[str, Any]:
    from op4ksr_bench.errors import UsageError

    if arm not in ARMS:
        raise UsageError(f"unknown arm {arm!r}; arms: {', '.join(ARMS)}")
    return {**COMMON, **ARMS[arm]}


def run_folder(arm: str, seed: int, runs: Path = RUNS_DIR) -> Path:
    return Path(runs) / f"{arm}-s{seed}"


def train_arguments(
    arm: str, seed: int, data: Path | None, max_steps: int | None, runs: Path, extra: list[str] = ()
) -> list[str]:
    """``reference_model/train.py`` arguments of one arm and seed (nested model keys as YAML mappings); ``extra``
    ``KEY=VALUE`` overrides go last (tests use them for tiny runs)."""
    values = arm_overrides(arm)
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
    """Per-image PSNR, PAS and dPAS of ``model`` on ``[(id, lr, hr)]`` pairs (PAS over the periods that fit)."""
    import torch

    from op4ksr_bench.metrics.periodicity import DEFAULT_PERIODS, lattice_multiples, pas
    from reference_model.train import psnr

    rows = {}
    with torch.no_grad():
        for image_id, lr, hr in pairs:
            periods = [p for p in DEFAULT_PERIODS if lattice_multiples(hr.shape[-2], hr.shape[-1], p) >= 1]
            prediction = model.upscale(lr, hr.shape[-2:])
            value = pas(prediction, periods).value
            rows[image_id] = {"psnr": psnr(prediction, hr), "pas": value, "dpas": value - pas(hr, periods).value}
    return rows


def evaluate_arm(arm: str, seed: int, data: Path | None, runs: Path, raw_dir: Path = RAW_DIR) -> Path:
    """Evaluate ``runs/ablation/<arm>-s<seed>/final`` on its held-out crops; write ``raw/<arm>-s<seed>.json``."""
    import csv

    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.errors import WeightsMissingError
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs
    from reference_model.model import OP4KSR

    folder = run_folder(arm, seed, runs)
    if not (folder / "final").is_dir():
        raise WeightsMissingError(f"{folder / 'final'} is missing: train it first (`python -m "
                                  f"reference_model.ablation train --arm {arm} --seed {seed}`)")  # fmt: skip
    import yaml

    model = OP4KSR.from_pretrained(folder / "final").eval()
    values = yaml.safe_load((folder / "config.yaml").read_text())  # what the run was trained with
    pairs = TrainingPairs(
        Path(data) if data else data_dir(), crop_size=int(values["crop_size"]), seed=seed,
        validation_count=int(values["validation_count"]), validation_crop_size=int(values["validation_crop_size"]),
    ).validation_pairs()  # fmt: skip
    with open(folder / "log.csv", newline="") as handle:
        log = [row for row in csv.DictReader(handle) if row.get("loss")]
    payload = {
        "arm": arm, "seed": seed, "overrides": arm_overrides(arm), "steps": int(log[-1]["step"]) if log else 0,
        "train_log": [{k: row[k] for k in ("step", "loss_l2", "loss_ap")} for row in log[:: max(1, len(log) // 50)]],
        "heldout": evaluate_model(model, pairs),
    }  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"{arm}-s{seed}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def rfr_sweep(seed: int, data: Path | None, runs: Path, sizes=SIZES, raw_dir: Path = RAW_DIR, count: int = 2) -> Path:
    """Inference-only RFR sweep on the ``rfr-base`` model of ``seed``: every (mode, factor) at every output size,
    on ``count`` held-out HR images centre-cropped to each size (degraded by the training pipeline)."""
    import numpy as np
    import torch

    from op4ksr_bench.atomic import atomic_write_text
    from op4ksr_bench.data.degradations import degrade, seed_for
    from op4ksr_bench.paths import data_dir
    from reference_model.data import TrainingPairs, _to_chw
    from reference_model.model import OP4KSR

    folder = run_folder("rfr-base", seed, runs) / "final"
    pairs = TrainingPairs(Path(data) if data else data_dir(), crop_size=128, seed=seed, validation_count=count,
                          validation_crop_size=128)  # fmt: skip
    rows = []
    for mode, factor in RFR_SWEEP:
        model = OP4KSR.from_pretrained(folder, overrides={"rfr_mode": mode, "rfr_scale": factor}).eval()
        for size in sizes:
            crops = []
            for entry in pairs.validation_entries:
                image = pairs._image(entry)
                side = min(size, image.shape[0] // 32 * 32, image.shape[1] // 32 * 32)
                top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
                crop = np.ascontiguousarray(image[top : top + side, left : left + side])
                lr, _ = degrade(crop, 4, pairs.degradation, seed=seed_for(seed, entry["id"]))
                crops.append((entry["id"], _to_chw(lr)[None], _to_chw(crop)[None]))
            with torch.no_grad():
                scores = evaluate_model(model, crops)
            for image_id, values in scores.items():
                side = crops[0][2].shape[-1]
                rows.append({"mode": mode, "scale": factor, "size": side, "tokens_per_side": side // 32,
                             "image": image_id, **values})  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"rfr-sweep-s{seed}.json"
    atomic_write_text(path, json.dumps({"seed": seed, "rows": rows}, indent=1, sort_keys=True) + "\n")
    return path


# ---- the report ----------------------------------------------------------------------------------------------


def mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4g} (1 seed)"
    return f"{statistics.fmean(values):.4g} +- {statistics.stdev(values):.2g}"


def load_raw(raw_dir: Path = RAW_DIR) -> tuple[dict[str, dict[int, dict]], list[dict]]:
    """``({arm: {seed: payload}}, rfr-sweep rows)`` from the committed raw files."""
    arms: dict[str, dict[int, dict]] = collections.defaultdict(dict)
    sweep: list[dict] = []
    for path in sorted(Path(raw_dir).glob("*.json")):
        payload = json.loads(path.read_text())
        if path.name.startswith("rfr-sweep-"):
            sweep += [dict(row, seed=payload["seed"]) for row in payload["rows"]]
        else:
            arms[payload["arm"]][int(payload["seed"])] = payload
    return dict(arms), sweep


def arm_table(arms: dict[str, dict[int, dict]]) -> list[str]:
    """Mean over images per seed, then mean +- sd over seeds; paired per-image differences to the reference arm."""
    lines = ["| arm | seeds | steps | PSNR (dB) | PAS | dPAS | paired dPSNR vs reference | paired ddPAS |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm, seeds in arms.items():
        per_seed = {key: [statistics.fmean(r[key] for r in p["heldout"].values()) for p in seeds.values()]
                    for key in ("psnr", "pas", "dpas")}  # fmt: skip
        paired = {"psnr": [], "dpas": []}
        reference = arms.get(REFERENCE_ARM.get(arm, ""), {})
        for seed, payload in seeds.items():
            if seed in reference:
                for image_id, row in payload["heldout"].items():
                    other = reference[seed]["heldout"].get(image_id)
                    if other:
                        for key in paired:
                            paired[key].append(row[key] - other[key])
        against = REFERENCE_ARM.get(arm, "-")
        lines.append(
            f"| {arm} | {len(seeds)} | {', '.join(str(p['steps']) for p in seeds.values())} "
            f"| {mean_sd(per_seed['psnr'])} | {mean_sd(per_seed['pas'])} | {mean_sd(per_seed['dpas'])} "
            f"| {mean_sd(paired['psnr']) + ' vs ' + against if paired['psnr'] else 'n/a'} "
            f"| {mean_sd(paired['dpas']) if paired['dpas'] else 'n/a'} |"
        )
    return lines


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
    for key in ("pas", "dpas"):
        svg = svg_lines(sweep_series(sweep, key), f"RFR sweep (inference only): {key}", "tokens per side",
                        key, log_x=True)  # fmt: skip
        atomic_write_text(plot_dir / f"rfr-sweep-{key}.svg", svg)
    curves = {f"{arm} s{seed}": [(float(r["step"]), float(r["loss_l2"])) for r in p["train_log"] if r["loss_l2"]]
              for arm, seeds in arms.items() for seed, p in seeds.items()}  # fmt: skip
    atomic_write_text(plot_dir / "train-l2.svg", svg_lines(curves, "training L2", "step", "L2"))
    relative = plot_dir.relative_to(doc.parent).as_posix()
    lines = [
        "# Ablation: RFR and L_AP (regenerated by `python -m reference_model.ablation`)",
        "",
        "This page is written by `python -m reference_model.ablation` from the raw results committed in",
        f"`{raw_dir.relative_to(REPOSITORY).as_posix() if raw_dir.is_relative_to(REPOSITORY) else raw_dir}` "
        "(one JSON per arm and seed, one per RFR sweep); do not edit it by hand. The arms, seeds and",
        "commands are in `reference_model/ablation.py` (`python -m reference_model.ablation plan`).",
        "",
        "## Arms on held-out crops (mean over images per seed; mean +- sd over seeds)",
        "",
        *(arm_table(arms) if arms else ["No arm has raw results yet."]),
        "",
        "## RFR at inference only, on the RFR-off base model",
        "",
        f"![PAS]({relative}/rfr-sweep-pas.svg) ![dPAS]({relative}/rfr-sweep-dpas.svg)",
        "",
        f"{len(sweep)} sweep rows." if sweep else "No sweep results yet.",
        "",
        f"![training L2]({relative}/train-l2.svg)",
        "",
        "## Verdict",
        "",
        verdict(arms, sweep),
        "",
    ]
    atomic_write_text(doc, "\n".join(lines))
    return doc


def verdict(arms: dict[str, dict[int, dict]], sweep: list[dict]) -> str:
    """A plain statement of what the raw results support (computed, not hand-written)."""
    needed = [arm for arm in ARMS if len(arms.get(arm, {})) < len(SEEDS)]
    if needed:
        return (f"No verdict: arms {', '.join(needed)} have fewer than {len(SEEDS)} seeds of raw results. The "
                "harness is ready; the runs are not done.")  # fmt: skip
    parts = []
    for arm, reference in REFERENCE_ARM.items():
        differences = [
            arms[arm][seed]["heldout"][image]["dpas"] - arms[reference][seed]["heldout"][image]["dpas"]
            for seed in SEEDS
            for image in arms[arm][seed]["heldout"]
            if image in arms[reference][seed]["heldout"]
        ]
        mean = statistics.fmean(differences)
        spread = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else math.inf
        word = "lowers" if mean + 2 * spread < 0 else "raises" if mean - 2 * spread > 0 else "does not change"
        parts.append(f"{arm} {word} dPAS relative to {reference} (paired mean {mean:+.4f}, 2 s.e. {2 * spread:.4f}).")
    return " ".join(parts)


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
        if name == "train":
            command.add_argument("--max-steps", type=int)
            command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sweep = commands.add_parser("rfr-sweep")
    sweep.add_argument("--seed", type=int, required=True)
    sweep.add_argument("--data", type=Path)
    sweep.add_argument("--runs", type=Path, default=RUNS_DIR)
    sweep.add_argument("--sizes", default=",".join(map(str, SIZES)))
    table = commands.add_parser("summarise", help="benchmark runs -> Markdown table")
    table.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command in (None, "report"):
            print(report())
        elif args.command == "plan":
            for arm in ARMS:
                for seed in SEEDS:
                    print(f"python -m reference_model.ablation train --arm {arm} --seed {seed}")
                    print(f"python -m reference_model.ablation evaluate --arm {arm} --seed {seed}")
            for seed in SEEDS:
                print(f"python -m reference_model.ablation rfr-sweep --seed {seed}")
            print("python -m reference_model.ablation report")
        elif args.command == "train":
            from reference_model.train import main as train_main

            return train_main(train_arguments(args.arm, args.seed, args.data, args.max_steps, args.runs, args.set))
        elif args.command == "evaluate":
            print(evaluate_arm(args.arm, args.seed, args.data, args.runs))
        elif args.command == "rfr-sweep":
            sizes = tuple(int(size) for size in args.sizes.split(","))
            print(rfr_sweep(args.seed, args.data, args.runs, sizes))
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
