"""Timed side by side (``make bench``): the converted methods' torch and ncnn backends on the same real crop.

The reported figures (larger inputs, FLOP rates) come from benchmarks/measure_cpu_speed.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "ncnn"])
@pytest.mark.parametrize(
    ("name", "weights_name", "size"), [("span-x4", "span-x4-ch48", 64), ("realesrgan-x4plus", "realesrgan-x4plus", 32)]
)
def test_benchmark_converted_backends(benchmark, name, weights_name, size, backend, real_lr_image):
    from op4ksr_bench.methods.factory import create_method
    from op4ksr_bench.weights import commands as weight_commands

    weight_commands.cli_fetch([weights_name])
    method = create_method(name, options={"backend": backend})
    _, height, width = real_lr_image.shape
    top, left = (height - size) // 2, (width - size) // 2
    image = torch.from_numpy(np.ascontiguousarray(real_lr_image[:, top : top + size, left : left + size]))[None]
    method.upscale(image)  # warm-up
    benchmark.group = f"{name} {size}x{size}"
    output = benchmark.pedantic(lambda: method.upscale(image), rounds=3, iterations=1)
    benchmark.extra_info.update({"backend": backend, "threads": torch.get_num_threads()})
    assert output.shape == (1, 3, 4 * size, 4 * size)
