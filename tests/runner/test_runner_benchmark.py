"""Benchmarks: the runner's own overhead per image, and tiled vs untiled cost (time and peak memory).

Run them timed with ``make bench`` (``pytest -k benchmark --benchmark-only``); ``make test`` runs each once.
The ratios are stored in each benchmark's ``extra_info`` (``--benchmark-json`` keeps them).
"""

from __future__ import annotations

import time

import pytest
import torch

from op4ksr_bench.methods.factory import create_method
from op4ksr_bench.methods.profiling import PeakMemory
from op4ksr_bench.results import load_run
from op4ksr_bench.run_commands import cli_run


def test_benchmark_runner_overhead(bench_env, benchmark, tmp_path):
    """Overhead = per-image wall time minus inference minus scoring (read, checks, PNG encode, fsync, JSON)."""
    bench_env["build"]("tiny", count=3, lr_size=(256, 192))
    rounds = iter(range(1000))

    def one_run():
        cli_run(method="bicubic", suite="tiny", data=None, results=tmp_path / f"r{next(rounds)}", metrics="psnr",
                opts=[], device="cpu", dtype="float32", seed=0, limit=None, shard=None)  # fmt: skip

    benchmark.pedantic(one_run, rounds=2, iterations=1)
    (folder,) = (tmp_path / "r0" / "tiny@v1" / "bicubic").glob("run-*")
    record, samples = load_run(folder)
    wall = sum(s["wall_seconds"] for s in samples)
    method = sum(s["seconds"] for s in samples)
    scoring = sum(s["score_seconds"] for s in samples)
    overhead = (wall - method - scoring) / wall
    benchmark.extra_info.update({
        "per_image_wall_s": wall / len(samples), "per_image_method_s": method / len(samples),
        "per_image_score_s": scoring / len(samples), "runner_overhead_fraction": overhead,
        "output_size": "1024x768",
    })  # fmt: skip
    assert len(samples) == 3 and all(s["status"] == "ok" for s in samples)
    for sample in samples:  # inference and scoring are parts of the image's wall time, measured by one clock
        assert 0 < sample["seconds"] and 0 < sample["score_seconds"]
        assert sample["seconds"] + sample["score_seconds"] <= sample["wall_seconds"]
    assert record["timing"]["wall_seconds"]["count"] == 3


def _measure(method, image: torch.Tensor) -> tuple[float, int | None]:
    method.upscale(image[..., :64, :64])  # warm-up
    with PeakMemory("cpu") as memory:
        start = time.perf_counter()
        method.upscale(image)
        seconds = time.perf_counter() - start
    return seconds, memory.bytes


@pytest.mark.parametrize("size", [512])
def test_benchmark_bicubic_tiled_vs_untiled(benchmark, size):
    """512x512 -> 2048x2048 bicubic, untiled vs tile 512 / overlap 64 / gaussian (1024 px: measure_tiling.py)."""
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    untiled = create_method("bicubic")
    tiled = create_method("bicubic", options={"tile": 512, "overlap": 64, "blend": "gaussian"})
    untiled_seconds, untiled_memory = _measure(untiled, image)
    tiled_seconds, tiled_memory = _measure(tiled, image)
    tiled_output = benchmark.pedantic(lambda: tiled.upscale(image), rounds=1, iterations=1)
    benchmark.extra_info.update({
        "untiled_seconds": untiled_seconds, "tiled_seconds": tiled_seconds,
        "time_ratio_tiled_over_untiled": tiled_seconds / untiled_seconds,
        "untiled_peak_bytes": untiled_memory, "tiled_peak_bytes": tiled_memory,
        "memory_ratio_tiled_over_untiled": (tiled_memory / untiled_memory) if untiled_memory else None,
    })  # fmt: skip
    # the comparison is between equal work: the tiled output is the untiled one up to the blended seams
    difference = (tiled_output - untiled.upscale(image)).abs()
    assert tiled_output.shape == (1, 3, 4 * size, 4 * size)
    assert float(difference.max()) < 0.01 and float(difference.mean()) < 1e-4


@pytest.mark.slow
def test_benchmark_realesrgan_tiled_vs_untiled(benchmark):
    """Real-ESRGAN x4plus on 128x128 -> 512x512 (the 1024x1024 case is measured by benchmarks/measure_tiling.py)."""
    from op4ksr_bench.methods.realesrgan import fetch_realesrgan_x4plus

    fetch_realesrgan_x4plus()
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    untiled = create_method("realesrgan-x4plus")
    tiled = create_method("realesrgan-x4plus", options={"tile": 256, "overlap": 32, "blend": "gaussian"})
    untiled_seconds, untiled_memory = _measure(untiled, image)
    tiled_seconds, tiled_memory = _measure(tiled, image)
    benchmark.pedantic(lambda: tiled.upscale(image), rounds=1, iterations=1)
    benchmark.extra_info.update({
        "untiled_seconds": untiled_seconds, "tiled_seconds": tiled_seconds,
        "seconds_per_megapixel_untiled": untiled_seconds / (128 * 128 / 1e6),
        "time_ratio_tiled_over_untiled": tiled_seconds / untiled_seconds,
        "memory_ratio_tiled_over_untiled": (tiled_memory / untiled_memory) if untiled_memory else None,
    })  # fmt: skip
