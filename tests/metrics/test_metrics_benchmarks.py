"""Benchmarks of every native metric on a 4096x4096 pair, and the peak memory of the default set on one.

Run them timed with `make bench` (or `pytest tests/metrics -k benchmark --benchmark-only`); under
`--benchmark-disable` each body runs once as a plain test. Side by side (one run, process CPU time):
``OMP_NUM_THREADS=1 pytest tests/metrics/test_metrics_benchmarks.py -k "side_by_side or metric_set" -m ""
--benchmark-only --benchmark-timer=time.process_time``: NIQE native vs pyiqa, SSIM ours vs scikit-image vs pyiqa,
and one scoring call with the whole default set.
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


@pytest.fixture
def niqe_weights(monkeypatch):
    """A NIQE parameter file of the right form (values do not change the cost) in the test's weights folder; its
    catalogue entry carries the generated file's sha256, since every load checks the hash."""
    import dataclasses

    from op4ksr_bench import weights
    from op4ksr_bench.weights import fetchers as weight_fetchers

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((36, 36)) * 0.1
    path = weights.weight_path("niqe-pris-params")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        weight_fetchers.niqe_mat_bytes(rng.uniform(0.2, 3.0, (1, 36)), basis @ basis.T + 0.05 * np.eye(36))
    )
    generated = dataclasses.replace(weights.entry("niqe-pris-params"), sha256=weights.sha256_file(path), size=None)
    monkeypatch.setitem(weights.CATALOGUE, "niqe-pris-params", generated)
    return path


@pytest.mark.parametrize(
    "implementation", ["native", pytest.param("pyiqa", marks=pytest.mark.slow)], ids=["native", "pyiqa"]
)
def test_benchmark_niqe_4k_side_by_side(benchmark, pair_4k, niqe_weights, implementation):
    """NIQE on one 4096x4096 image: ``niqe`` (native) and ``niqe-pyiqa`` (pyiqa 0.1.16), same convention."""
    benchmark.group = "niqe 4096x4096"
    metric = create_metrics(["niqe" if implementation == "native" else "niqe-pyiqa"])[0][0]
    pred, _ = pair_4k
    values = benchmark.pedantic(metric, args=(pred,), rounds=1 if implementation == "pyiqa" else 3, iterations=1)
    assert np.isfinite(values[metric.name])


@pytest.mark.parametrize(
    "implementation",
    ["ours", pytest.param("scikit-image", marks=pytest.mark.slow), pytest.param("pyiqa", marks=pytest.mark.slow)],
)
def test_benchmark_ssim_4k_side_by_side(benchmark, pair_4k, implementation):
    """SSIM of the grey 4096x4096 pair (MATLAB rgb2gray, Gaussian 11x11, valid region, no downsampling): ours
    (``ssim-official``), scikit-image's ``structural_similarity`` and pyiqa's ``ssim`` on the same grey images."""
    from op4ksr_bench.metrics.fidelity import rgb_to_gray

    benchmark.group = "ssim 4096x4096 grey"
    pred, ref = pair_4k
    if implementation == "ours":
        metric = create_metrics(["ssim-official"])[0][0]
        value = benchmark.pedantic(lambda: metric(pred, ref)["ssim-official"], rounds=3, iterations=1)
    elif implementation == "scikit-image":
        from skimage.metrics import structural_similarity

        options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
        grey_pred, grey_ref = rgb_to_gray(pred), rgb_to_gray(ref)
        value = benchmark.pedantic(
            lambda: structural_similarity(grey_pred, grey_ref, **options), rounds=1, iterations=1
        )
    else:
        import torch
        from pyiqa.archs.ssim_arch import ssim

        grey_pred, grey_ref = (torch.from_numpy(rgb_to_gray(image))[None, None] for image in (pred, ref))

        def run():
            with torch.no_grad():
                return ssim(grey_pred, grey_ref, data_range=255.0).item()

        value = benchmark.pedantic(run, rounds=1, iterations=1)
    assert 0.5 < value <= 1.0


def test_benchmark_default_metric_set_4k(benchmark, pair_4k, niqe_weights):
    """One scoring call (the path of `score` and the runner) with every default metric available offline."""
    import time

    from op4ksr_bench.metrics.scoring import DEFAULT_METRICS, score_images

    metrics, _ = create_metrics(None, default_names=DEFAULT_METRICS)
    names = [metric.name for metric in metrics]
    assert "niqe" in names and "dpas" in names
    pred, ref = pair_4k
    cpu = []

    def fresh_copies():  # results are remembered per array object; copies keep every round honest
        return (metrics, pred.copy(), ref.copy()), {}

    def timed(*arguments):
        start = time.process_time()
        values = score_images(*arguments)
        cpu.append(time.process_time() - start)
        return values

    values = benchmark.pedantic(timed, setup=fresh_copies, rounds=3, iterations=1)
    benchmark.extra_info.update({"metrics": names, "process_cpu_s": cpu})
    assert all(np.isfinite(values[name]) for name in names)


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
finite = sorted(name for name in names if values.get(name) is not None and np.isfinite(values[name]))
print(json.dumps({"metrics": [m.name for m in metrics], "names": names, "finite": finite, "warnings": warnings,
                  "peak_mib": peak / 1024, "before_mib": before / 1024}))
"""


@pytest.mark.slow
def test_peak_memory_of_the_default_metric_set_on_a_4k_pair(record_property):
    result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    record_property("peak_mib", report["peak_mib"])  # the CPU target is ~6 GB; the figure depends on the machine
    print(report)
    created = set(report["metrics"])
    assert all(name in created or any(f" {name}:" in w for w in report["warnings"]) for name in report["names"])
    assert sorted(created) == report["finite"]  # every metric created on the 4K pair gave a finite value
