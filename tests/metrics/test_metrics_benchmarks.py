"""Benchmarks of every native metric on a 4096x4096 pair, and the peak memory of the default set on one.

Run them timed with `make bench` (or `pytest tests/metrics -k benchmark --benchmark-only`); under
`--benchmark-disable` each body runs once as a plain test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from skimage import data as photos

from op4ksr_bench.metrics.scoring import NATIVE_METRICS, create_metrics

SIZE = 4096


@pytest.fixture(scope="module")
def pair_4k() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = np.tile(photos.astronaut(), (SIZE // 512, SIZE // 512, 1))
    noise = rng.integers(-6, 7, reference.shape, dtype=np.int16)
    prediction = np.clip(reference.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return prediction, reference


@pytest.mark.parametrize("name", NATIVE_METRICS)
def test_benchmark_native_metric_4k(benchmark, pair_4k, name):
    metric = create_metrics([name])[0][0]
    pred, ref = pair_4k

    def fresh_copies():  # PAS remembers reports per array object; copies keep every round honest
        return (pred.copy(), ref.copy()), {}

    values = benchmark.pedantic(metric, setup=fresh_copies, rounds=3, iterations=1)
    assert np.isfinite(values[name])


PEAK_SCRIPT = """
import json, resource, sys
import numpy as np
from skimage import data
from op4ksr_bench.metrics.scoring import DEFAULT_METRICS, NATIVE_METRICS, create_metrics, score_images
names = list(dict.fromkeys(list(DEFAULT_METRICS) + list(NATIVE_METRICS)))
metrics, warnings = create_metrics(None, default_names=names)
ref = np.tile(data.astronaut(), (8, 8, 1))
pred = np.clip(ref.astype(np.int16) + 3, 0, 255).astype(np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
values = score_images(metrics, pred, ref)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"metrics": [m.name for m in metrics], "peak_mib": peak / 1024, "before_mib": before / 1024}))
"""


@pytest.mark.slow
def test_peak_memory_of_the_default_metric_set_on_a_4k_pair(record_property):
    result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    record_property("peak_mib", report["peak_mib"])
    print(report)
    assert report["peak_mib"] < 6 * 1024  # the CPU target: ~6 GB
