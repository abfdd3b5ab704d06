"""Time SSIM (ours, scikit-image, pyiqa) and every native metric on one 4096x4096 pair; print a Markdown table.

Usage: .venv/bin/python benchmarks/measure_metric_speed.py [--skip-pyiqa]
Wall time (perf_counter) and process CPU time (all threads) are both printed; the machine's load average at
the start and end is printed too, because a shared machine inflates wall times.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from skimage import data


def timed(function, *arguments):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*arguments)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    from skimage.metrics import structural_similarity

    from op4ksr_bench.metrics.scoring import NATIVE_METRICS, create_metrics, score_images

    reference = np.tile(data.astronaut(), (8, 8, 1))
    rng = np.random.default_rng(0)
    prediction = np.clip(reference.astype(np.int16) + rng.integers(-6, 7, reference.shape), 0, 255).astype(np.uint8)
    import torch  # imported (and PAS warmed up) before timing: the first call would include the import

    from op4ksr_bench.metrics.periodicity import pas

    pas(torch.rand(1, 3, 256, 256))
    print(f"load average at start: {os.getloadavg()}")
    print("| what | value | wall s | cpu s |\n|---|---|---|---|")
    total_wall = total_cpu = 0.0
    for name in NATIVE_METRICS:
        metric = create_metrics([name])[0][0]
        values, wall, cpu = timed(metric, prediction.copy(), reference.copy())
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"| ours {name} | {values[name]:.6f} | {wall:.2f} | {cpu:.2f} |")
    print(f"| ours, all native metrics, each alone (sum) | - | {total_wall:.2f} | {total_cpu:.2f} |")
    # the scorer's path: one score_images call shares Y, the SSIM pass and PAS(SR) between metrics
    metrics, _ = create_metrics(list(NATIVE_METRICS))
    _, wall, cpu = timed(score_images, metrics, prediction.copy(), reference.copy())
    print(f"| ours, all native metrics, one `score_images` call | - | {wall:.2f} | {cpu:.2f} |")
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    value, wall, cpu = timed(lambda: structural_similarity(reference, prediction, channel_axis=2, **options))
    print(f"| scikit-image SSIM | {value:.6f} | {wall:.2f} | {cpu:.2f} |")
    if "--skip-pyiqa" not in sys.argv:
        import pyiqa
        import torch

        metric = pyiqa.create_metric("ssim", device="cpu", test_y_channel=False)

        def tensor(array):
            return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255

        with torch.no_grad():
            value, wall, cpu = timed(lambda: metric(tensor(prediction), tensor(reference)).item())
        print(f"| pyiqa SSIM (RGB) | {value:.6f} | {wall:.2f} | {cpu:.2f} |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
