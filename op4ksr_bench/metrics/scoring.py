"""Build metrics by name and score images with them: THE code path of both ``op4ksr-bench score`` and the runner.

``create_metrics`` resolves names through the :data:`~op4ksr_bench.metrics.METRICS` registry and passes each
class only the options its constructor takes (``crop_border``, ``extra_periods``, ``tile_stride``, ``device``).
Metrics whose weight files are missing are skipped with a warning line when they come from a default list,
and fail with one line when they were asked for by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.metrics import METRICS, default_metrics, native_metrics
from op4ksr_bench.metrics.base import Metric
from op4ksr_bench.metrics.pairs import check_same_size

DEFAULT_METRICS = default_metrics()
"""Used by ``score`` when no ``--metrics`` are given (FR ones only when references are given): the classes
declared ``default``."""

NATIVE_METRICS = native_metrics()
"""Metrics this package computes itself from no weight file (:meth:`~op4ksr_bench.metrics.base.Metric.is_native`)."""


def declared_tile_stride(method: Any) -> int | None:
    """The tile stride (output px) of a method run tile by tile, or None for a patch-free run.

    The tiling engine's stride (``tile - overlap``), or an external method's default tile geometry. A method's
    other periods (latent cells, tokens) are not tile strides: PAS examines them, the seam score does not.
    """
    stride = getattr(method, "stride", None)
    if isinstance(stride, int) and stride > 0:
        return stride
    tile = getattr(getattr(method, "external", None), "tile", None) or {}
    size, overlap = tile.get("size"), tile.get("overlap")
    if isinstance(size, int) and isinstance(overlap, int) and size > overlap:
        return size - overlap
    return None


def missing_weights(name: str) -> list[str]:
    """One line per missing weight file of metric ``name`` (empty when it can be built)."""
    from op4ksr_bench import weights

    return [weights.missing_message(file) for file in METRICS.get(name).weights if not weights.is_present(file)]


def create_metrics(
    names: Sequence[str] | None,
    *,
    default_names: Sequence[str] = (),
    crop_border: int = 0,
    extra_periods: Sequence[int] = (),
    tile_stride: int | None = None,
    device: str = "cpu",
) -> tuple[list[Metric], list[str]]:
    """Instantiate metrics.

    Args:
        names: Metric names asked for explicitly, or None to use ``default_names``.
        default_names: Used when ``names`` is None; those whose weights are missing are skipped with a warning.
        crop_border: Border crop of FR metrics, in pixels.
        extra_periods: Periods PAS/dPAS examine besides 8, 16, 32, 64 px.
        tile_stride: The method's tile stride in output pixels (PAS/dPAS period and seam stride), if tiled.
        device: Torch device of learned metrics.

    Returns:
        ``(metrics, warnings)``.

    Raises:
        UsageError: an unknown or repeated name.
        WeightsMissingError: an explicitly named metric's weight file is missing (one line).
    """
    explicit = names is not None
    chosen = list(names) if explicit else list(default_names)
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"metric list repeats a name: {', '.join(chosen)}")
    options: dict[str, Any] = {
        "crop_border": crop_border,
        "extra_periods": tuple(extra_periods),
        "tile_stride": tile_stride,
        "device": device,
    }
    metrics, warnings = [], []
    for name in chosen:
        metric_class = METRICS.get(name)
        missing = missing_weights(name)
        if missing:
            if explicit:
                raise WeightsMissingError(f"{name}: {missing[0]}")
            warnings.append(f"skipping {name}: {missing[0]}")
            continue
        accepted = inspect.signature(metric_class.__init__).parameters
        metrics.append(metric_class(**{key: value for key, value in options.items() if key in accepted}))
    return metrics, warnings


def score_images(metrics: Sequence[Metric], pred: np.ndarray, ref: np.ndarray | None) -> dict[str, float | None]:
    """Score one image with every metric: ``{name: value, "<name>.<detail>": value}``; FR metrics give None
    without a reference.

    Raises:
        ImageError: the reference's size differs from the prediction's (never resized).
    """
    if ref is not None:
        check_same_size(pred, ref, ref_name="its reference")
    from op4ksr_bench.metrics import memo

    values: dict[str, float | None] = {}
    with memo.scope():  # intermediate results (Y, SSIM pass, PAS of each image) shared by this call's metrics
        for metric in metrics:
            if metric.kind == "FR" and ref is None:
                values[metric.name] = None
                continue
            values.update({key: float(value) for key, value in metric(pred, ref).items()})
    return values


def score_files(metrics: Sequence[Metric], pred_path: Path, ref_path: Path | None) -> dict[str, float | None]:
    """Read ``pred_path`` (and ``ref_path``) through :mod:`op4ksr_bench.imageio` and score them."""
    from op4ksr_bench.imageio import read_image

    pred = read_image(pred_path)
    ref = read_image(ref_path) if ref_path is not None else None
    if ref is not None:
        check_same_size(pred, ref, str(pred_path), str(ref_path))
    return score_images(metrics, pred, ref)


def metric_record(metric: Metric) -> dict[str, Any]:
    """What results store about a metric: identity, direction, backend, licence, weights and settings."""
    record = {
        "name": metric.name,
        "kind": metric.kind,
        "higher_is_better": metric.higher_is_better,
        "backend": metric.backend,
        "licence": metric.licence,
        "non_commercial": metric.non_commercial,
        "weights": list(metric.weights),
        "settings": metric.settings(),
    }
    if metric.ideal is not None:
        record["ideal"] = metric.ideal  # rank by |value - ideal| (see Metric.ideal)
    return record
