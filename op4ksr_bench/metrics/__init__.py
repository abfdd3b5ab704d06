"""Metrics. ``METRICS`` maps names to :class:`~op4ksr_bench.metrics.base.Metric` classes, lazily.

Adding a metric is one class (with its facts as class attributes, :class:`~op4ksr_bench.metrics.base.Metric`)
and one line below. Every list of metric names (the defaults, the native ones, the leaderboard's column order,
the weights catalogue's "used by") is derived here from the registered classes; importing them imports numpy
and scipy, never torch (learned metrics import their backends when built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from op4ksr_bench.registry import Registry

if TYPE_CHECKING:
    from op4ksr_bench.metrics.base import Metric

METRICS: Registry = Registry("metric")

for _name, _target in (
    ("psnr", "op4ksr_bench.metrics.fidelity:PSNR"),
    ("ssim", "op4ksr_bench.metrics.fidelity:SSIM"),
    ("psnr-y", "op4ksr_bench.metrics.fidelity:PSNRY"),
    ("ssim-y", "op4ksr_bench.metrics.fidelity:SSIMY"),
    ("ssim-official", "op4ksr_bench.metrics.fidelity:SSIMOfficial"),
    ("ssim-matlab", "op4ksr_bench.metrics.fidelity:SSIMMatlab"),
    ("ms-ssim", "op4ksr_bench.metrics.fidelity:MSSSIM"),
    ("lpips-alex", "op4ksr_bench.metrics.learned:LPIPSAlex"),
    ("lpips-vgg", "op4ksr_bench.metrics.learned:LPIPSVGG"),
    ("dists", "op4ksr_bench.metrics.learned:DISTS"),
    ("niqe", "op4ksr_bench.metrics.niqe:NIQE"),
    ("niqe-ycbcr", "op4ksr_bench.metrics.niqe:NIQEYCbCr"),
    ("niqe-pyiqa", "op4ksr_bench.metrics.learned:NIQEPyiqa"),
    ("musiq", "op4ksr_bench.metrics.learned:MUSIQ"),
    ("maniqa", "op4ksr_bench.metrics.learned:MANIQA"),
    ("clipiqa", "op4ksr_bench.metrics.learned:CLIPIQA"),
    ("topiq-nr", "op4ksr_bench.metrics.learned:TOPIQNR"),
    ("glcm", "op4ksr_bench.metrics.texture:GLCMScore"),
    ("compression-ratio", "op4ksr_bench.metrics.texture:CompressionRatio"),
    ("pas", "op4ksr_bench.metrics.artifacts:PAS"),
    ("dpas", "op4ksr_bench.metrics.artifacts:DPAS"),
    ("seam", "op4ksr_bench.metrics.artifacts:Seam"),
):
    METRICS.register(_name, _target)
del _name, _target


def metric_classes() -> list[type[Metric]]:
    """Every registered metric class, in registration order."""
    return [METRICS.get(name) for name in METRICS.names()]


def default_metrics() -> tuple[str, ...]:
    """Names of the metrics declared ``default`` (what ``score`` computes without ``--metrics``)."""
    return tuple(cls.name for cls in metric_classes() if cls.default)


def native_metrics() -> tuple[str, ...]:
    """Names of the metrics computed by this package's own code from no weight file (:meth:`Metric.is_native`)."""
    return tuple(cls.name for cls in metric_classes() if cls.is_native())


def display_order() -> tuple[str, ...]:
    """Names of the metrics with a ``display_order``, in that order (the leaderboard's column order)."""
    ordered = [cls for cls in metric_classes() if cls.display_order is not None]
    return tuple(cls.name for cls in sorted(ordered, key=lambda cls: cls.display_order))


def metrics_using(weight_name: str) -> tuple[str, ...]:
    """Names of the metrics that need the weights catalogue entry ``weight_name``."""
    return tuple(cls.name for cls in metric_classes() if weight_name in cls.weights)
