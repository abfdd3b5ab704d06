"""Per-channel mean colour error of super-resolved images against the HR: the colour-cast check.

A colour cast is a shift of a channel's mean over the whole image (the old ``nano`` checkpoint turned green
foliage beige: blue mean 0.40 where the HR has 0.21). For each image, the signed error of channel ``c`` is
``mean(SR_c) - mean(HR_c)`` on ``[0, 255]`` (8-bit values, ``crop_border`` pixels dropped on every side, as the
suite scores); a run's colour error is the mean over its images of the absolute per-channel errors.

    python -m reference_model.colour RUN_DIR [RUN_DIR ...] [--data DIR]

``RUN_DIR`` is a run folder written by ``op4ksr-bench run`` (``run.json`` + ``images/<id>.png``); its suite is
read from ``run.json`` and the HR images from the built suite in ``--data`` (default: the benchmark's data folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from op4ksr_bench.errors import Op4ksrError, UsageError

CHANNELS = ("R", "G", "B")


def channel_mean_error(prediction: np.ndarray, target: np.ndarray, crop_border: int = 0) -> np.ndarray:
    """Signed ``mean(prediction_c) - mean(target_c)`` per channel, ``[3]`` float64, for ``H x W x 3`` arrays of
    the same shape on the same scale (8-bit values for the numbers this module reports)."""
    if prediction.shape != target.shape or prediction.ndim != 3 or prediction.shape[2] != 3:
        raise UsageError(f"colour error needs two H x W x 3 images of one shape, got {prediction.shape} and "
                         f"{target.shape}")  # fmt: skip
    if crop_border:
        prediction = prediction[crop_border:-crop_border, crop_border:-crop_border]
        target = target[crop_border:-crop_border, crop_border:-crop_border]
    return prediction.astype(np.float64).mean(axis=(0, 1)) - target.astype(np.float64).mean(axis=(0, 1))


def run_colour_errors(run_dir: Path, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """``{image id: signed per-channel error [3]}`` for every output image of a benchmark run folder."""
    from op4ksr_bench.data.manifest import BuiltSuite
    from op4ksr_bench.imageio import read_image
    from op4ksr_bench.paths import data_dir as default_data_dir

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"{run_dir} is not a run folder (no run.json); pass a folder written by `op4ksr-bench run`")
    run = json.loads((run_dir / "run.json").read_text())
    suite = run.get("suite")
    suite_name = suite.get("name") if isinstance(suite, dict) else suite
    if not isinstance(suite_name, str):
        raise UsageError(f"{run_dir / 'run.json'} names no suite; pass a folder written by `op4ksr-bench run`")
    suite = BuiltSuite.open(Path(data_dir) if data_dir else default_data_dir(), suite_name)
    crop_border = int(getattr(suite.spec, "crop_border", 0) or 0)
    errors = {}
    for entry in suite.entries:
        output = run_dir / "images" / f"{entry['id']}.png"
        if entry.get("hr") is None or not output.is_file():
            continue
        errors[entry["id"]] = channel_mean_error(read_image(output), read_image(suite.hr_path(entry)), crop_border)
    if not errors:
        raise UsageError(f"{run_dir}: no output image matches an HR image of suite {suite_name}")
    return errors


def summary(errors: dict[str, np.ndarray]) -> np.ndarray:
    """Mean absolute per-channel error over the images, ``[3]``."""
    return np.mean(np.abs(np.stack(list(errors.values()))), axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by `op4ksr-bench run`")
    parser.add_argument("--data", type=Path, help="data folder with the built suites")
    args = parser.parse_args(argv)
    try:
        print("run | images | mean abs error R | G | B (8-bit levels)")
        for run_dir in args.runs:
            errors = run_colour_errors(run_dir, args.data)
            red, green, blue = summary(errors)
            print(f"{run_dir} | {len(errors)} | {red:.2f} | {green:.2f} | {blue:.2f}")
    except Op4ksrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
