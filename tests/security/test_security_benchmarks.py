"""What the run-time input check costs: hashing a 4K LR/HR file beside decoding it (which the runner does anyway).

Run timed with `pytest tests/security -k benchmark --benchmark-only`; under `--benchmark-disable` each body runs
once as a plain test.
"""

from __future__ import annotations

import numpy as np
import pytest

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.imageio import read_image, write_png


@pytest.fixture(scope="module")
def png_4k(tmp_path_factory):
    """A 3840x2160 PNG of noise: the largest (least compressible) file of that size, 24.9 MB."""
    path = tmp_path_factory.mktemp("bench") / "noise.png"
    write_png(path, np.random.default_rng(0).integers(0, 256, (2160, 3840, 3), dtype=np.uint8))
    return path


def test_benchmark_hash_4k_png(benchmark, png_4k):
    digest = benchmark.pedantic(sha256_file, args=(png_4k,), rounds=5, iterations=1)
    assert len(digest) == 64


def test_benchmark_decode_4k_png(benchmark, png_4k):
    image = benchmark.pedantic(read_image, args=(png_4k,), rounds=5, iterations=1)
    assert image.shape == (2160, 3840, 3)
