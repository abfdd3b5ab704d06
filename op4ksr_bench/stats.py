"""Uncertainty of a mean over images and paired significance between two methods (``scipy.stats``).

* **Confidence interval**: :func:`bootstrap_ci` is the 95 % percentile bootstrap interval of the mean over
  images (``scipy.stats.bootstrap``, ``method="percentile"``, :data:`BOOTSTRAP_RESAMPLES` resamples, a generator
  seeded with :data:`BOOTSTRAP_SEED`), so the same values always give the same interval. One value, or values
  that are all equal, give the degenerate interval ``[v, v]`` (every resample has that mean); the number of
  images is always shown beside it.
* **Paired significance**: :func:`paired_test` compares two methods on the images both scored with the
  Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, zero differences dropped as Wilcoxon's
  ``zero_method="wilcox"``). With fewer than :data:`MIN_PAIRS` non-zero differences no difference is called
  significant: the exact two-sided test cannot reach p < 0.05 there (its smallest p-value is ``2 / 2**n``,
  0.0625 for n = 5).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
MIN_PAIRS = 6
CI_METHOD = (
    f"{CONFIDENCE:.0%} percentile bootstrap of the mean over images (scipy.stats.bootstrap, "
    f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED})"
)
TEST_METHOD = (
    f"two-sided Wilcoxon signed-rank test on the paired per-image differences (scipy.stats.wilcoxon), "
    f"significant at p < {SIGNIFICANCE}; fewer than {MIN_PAIRS} non-zero differences are never significant"
)


def finite(values: Sequence[Any]) -> list[float]:
    """The finite numbers of ``values`` (None, NaN, Inf, and non-numbers dropped), as floats."""
    out = []
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append(float(value))
    return out


def bootstrap_ci(values: Sequence[Any]) -> list[float] | None:
    """The seeded 95 % percentile bootstrap interval ``[low, high]`` of the mean; None without a finite value."""
    interval = _bootstrap(tuple(finite(values)))
    return list(interval) if interval is not None else None


def _bootstrap(values: tuple[float, ...]) -> tuple[float, float] | None:
    """:func:`bootstrap_ci` of the finite ``values``, computed on every call (seeded: equal inputs, equal interval).

    Runs record their intervals in ``run.json``; the report computes one only for files written without it.
    """
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    if data.size == 1 or bool(np.all(data == data[0])):
        mean = float(np.mean(data))
        return mean, mean
    from scipy.stats import bootstrap

    with np.errstate(all="ignore"):  # values near the float limits overflow the resampled sums: checked below
        result = bootstrap(
            (data,),
            np.mean,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # overflow of huge values: no interval rather than NaN
        return None
    return low, high


@dataclass(frozen=True)
class PairedResult:
    """The outcome of :func:`paired_test`.

    Attributes:
        n: Images both methods scored (with a finite value).
        nonzero: Of those, images where the two values differ.
        mean_difference: Mean of ``a - b`` over the ``n`` images (None when ``n`` is 0).
        p_value: Two-sided Wilcoxon p-value (1.0 when no difference is non-zero).
        significant: Whether the difference is significant at :data:`SIGNIFICANCE` (never with fewer than
            :data:`MIN_PAIRS` non-zero differences).
    """

    n: int
    nonzero: int
    mean_difference: float | None
    p_value: float
    significant: bool

    def describe(self) -> str:
        if self.n == 0:
            return "no image in common"
        if self.nonzero < MIN_PAIRS:
            return f"n={self.n} paired images, {self.nonzero} differ: too few for a significant difference"
        return f"n={self.n} paired images, Wilcoxon p={self.p_value:.3g}"


def paired_test(a: dict[str, Any], b: dict[str, Any]) -> PairedResult:
    """Compare per-image values ``a`` and ``b`` (image id -> value) on the images both have a finite value for."""
    import numpy as np

    common = sorted(key for key in a.keys() & b.keys() if finite([a[key]]) and finite([b[key]]))
    differences = np.asarray([float(a[key]) - float(b[key]) for key in common], dtype=np.float64)
    if differences.size == 0:
        return PairedResult(0, 0, None, 1.0, False)
    nonzero = int(np.count_nonzero(differences))
    mean = float(np.mean(differences))
    if nonzero == 0:
        return PairedResult(len(common), 0, mean, 1.0, False)
    from scipy.stats import wilcoxon

    p_value = float(wilcoxon(differences[differences != 0], zero_method="wilcox").pvalue)
    if not math.isfinite(p_value):
        p_value = 1.0
    significant = nonzero >= MIN_PAIRS and p_value < SIGNIFICANCE
    return PairedResult(len(common), nonzero, mean, p_value, significant)


def mode(values: Sequence[Any]) -> tuple[float, int] | None:
    """The most frequent finite value and how often it occurs (the smallest value on ties); None if none."""
    counts = Counter(finite(values))
    if not counts:
        return None
    value, count = min(counts.items(), key=lambda item: (-item[1], item[0]))
    return value, count
