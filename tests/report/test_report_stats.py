"""Bootstrap intervals and paired significance (op4ksr_bench.stats) and the summaries results store."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap, wilcoxon

from op4ksr_bench import stats
from op4ksr_bench.results import summarize, summarize_samples


def test_bootstrap_ci_is_reproducible_from_the_seed():
    values = [24.1, 25.3, 23.8, 26.0, 24.9, 25.5, 22.7]
    expected = bootstrap(
        (np.asarray(values),),
        np.mean,
        n_resamples=stats.BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(stats.BOOTSTRAP_SEED),
    ).confidence_interval
    low, high = stats.bootstrap_ci(values)
    assert (low, high) == (float(expected.low), float(expected.high))
    assert stats.bootstrap_ci(values) == [low, high]
    assert low < float(np.mean(values)) < high
    assert min(values) <= low and high <= max(values)


def test_bootstrap_ci_of_degenerate_samples():
    assert stats.bootstrap_ci([3.5]) == [3.5, 3.5]
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == [2.0, 2.0]
    assert stats.bootstrap_ci([]) is None
    assert stats.bootstrap_ci([None, float("nan"), float("inf")]) is None
    assert stats.bootstrap_ci([1e308, -1e308, 1e308]) is None  # resampled sums overflow: no interval, no NaN


def test_paired_test_small_n_is_never_significant():
    better = {f"i{k}": 30.0 + k for k in range(5)}
    worse = {key: value - 1.0 for key, value in better.items()}
    result = stats.paired_test(better, worse)
    assert (result.n, result.nonzero, result.significant) == (5, 5, False)
    assert result.p_value == pytest.approx(0.0625)  # the smallest exact two-sided p with 5 pairs


def test_paired_test_uses_wilcoxon_on_common_images():
    a = {f"i{k}": float(k) + 0.3 * (k % 3 + 1) for k in range(12)}
    b = {f"i{k}": float(k) for k in range(12)}
    b["only-b"] = 99.0
    a["i0"] = None  # no value: not paired
    result = stats.paired_test(a, b)
    differences = [a[f"i{k}"] - b[f"i{k}"] for k in range(1, 12)]
    assert result.n == 11
    assert result.p_value == pytest.approx(float(wilcoxon(differences).pvalue))
    assert result.significant
    assert result.mean_difference == pytest.approx(float(np.mean(differences)))


def test_paired_test_equal_values_and_no_overlap():
    same = {"a": 1.0, "b": 2.0}
    assert stats.paired_test(same, dict(same)) == stats.PairedResult(2, 0, 0.0, 1.0, False)
    assert stats.paired_test({"a": 1.0}, {"b": 1.0}).n == 0


def test_summaries_carry_intervals_and_modes():
    summary = summarize([1.0, 2.0, 4.0])
    assert summary["ci95"] == stats.bootstrap_ci([1.0, 2.0, 4.0])
    assert summarize([None])["ci95"] is None
    samples = [
        {"id": str(k), "status": "ok", "metrics": {"pas": float(k), "pas.period": period}}
        for k, period in enumerate([32.0, 16.0, 32.0, None])
    ]
    samples.append({"id": "x", "status": "failed", "metrics": {}})
    result = summarize_samples(samples)
    assert result["pas.period"] == {"mode": 32.0, "mode_count": 2, "count": 3}
    assert "mean" not in result["pas.period"]
    assert result["pas"]["count"] == 4 and result["pas"]["ci95"] is not None
