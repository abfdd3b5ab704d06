"""Metrics for the artifacts of patch-free and tiled 4K SR: PAS, dPAS (see docs/metrics/pas.md) and the seam score.

``pas`` (NR) and ``dpas`` (FR) call :mod:`op4ksr_bench.metrics.periodicity`, the same code as the trainer's
L_AP loss. ``seam`` compares gradient energy on tile boundaries with the energy between them.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from op4ksr_bench.errors import ImageError
from op4ksr_bench.metrics.base import Metric

DEFAULT_PERIODS = (8, 16, 32, 64)  # mirrors periodicity.DEFAULT_PERIODS without importing torch here


def candidate_periods(extra_periods: Sequence[int] = (), tile_stride: int | None = None) -> tuple[int, ...]:
    """Default periods plus any extra ones and the method's tile stride, sorted and without repeats."""
    periods = set(DEFAULT_PERIODS) | {int(period) for period in extra_periods}
    if tile_stride:
        periods.add(int(tile_stride))
    for period in periods:
        if period < 4:
            raise ValueError(f"period {period} px is too small; periods start at 4 px")
    return tuple(sorted(periods))


class _PasCache:
    """Remembers the last PAS report per image object, so ``pas`` and ``dpas`` on one pair compute PAS(SR) once."""

    def __init__(self) -> None:
        self._entries: list[tuple[weakref.ref, tuple, Any]] = []

    def get(self, image: np.ndarray, key: tuple, compute) -> Any:
        for reference, entry_key, value in self._entries:
            if reference() is image and entry_key == key:
                return value
        value = compute()
        self._entries = [entry for entry in self._entries if entry[0]() is not None][-3:]
        self._entries.append((weakref.ref(image), key, value))
        return value


_CACHE = _PasCache()


class _Periodicity(Metric):
    """Shared options of ``pas`` and ``dpas``."""

    higher_is_better: ClassVar[bool] = False

    def __init__(self, extra_periods: Sequence[int] = (), tile_stride: int | None = None, device: str = "cpu") -> None:
        self.periods = candidate_periods(extra_periods, tile_stride)
        self.device = device

    def settings(self) -> dict[str, Any]:
        from op4ksr_bench.metrics import periodicity

        return {
            "periods": list(self.periods),
            "multiples": periodicity.DEFAULT_MULTIPLES,
            "highpass_sigma": periodicity.DEFAULT_HIGHPASS_SIGMA,
            "taper_ramp": periodicity.DEFAULT_RAMP,
            "background_radii": list(periodicity.BACKGROUND_RADII),
            "luma": "BT.601",
            "policy": "native",
        }

    def _report(self, image: np.ndarray):
        from op4ksr_bench.imageio import check_rgb8
        from op4ksr_bench.metrics import periodicity

        height, width = image.shape[:2]
        periods = [p for p in self.periods if periodicity.lattice_multiples(height, width, p) >= 1]
        if not periods:
            raise ImageError(f"{width}x{height} is too small for PAS; it needs at least 2 * (8 + 4) = 24 px per side")

        check_rgb8(image, "image")

        def compute():  # luminance straight from the 8-bit array: no float RGB tensor (periodicity.luminance_rgb8)
            return periodicity.pas_luminance(periodicity.luminance_rgb8(image).to(self.device), periods)

        return _CACHE.get(image, (tuple(periods), self.device), compute)


class PAS(_Periodicity):
    """Periodic Artifact Score (NR): lattice-lag prominence of the high-passed luminance autocorrelation."""

    name: ClassVar[str] = "pas"
    kind: ClassVar = "NR"

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        report = self._report(pred)
        values = {self.name: report.value, f"{self.name}.period": float(report.dominant_period)}
        values.update({f"{self.name}.p{period}": score for period, score in report.per_period.items()})
        return values


class DPAS(_Periodicity):
    """dPAS (FR) = PAS(SR) - PAS(HR): periodic structure the method added beyond the reference's own."""

    name: ClassVar[str] = "dpas"
    kind: ClassVar = "FR"

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        if ref is None:
            raise ImageError("dpas is a full-reference metric and needs a reference image")
        if pred.shape != ref.shape:
            raise ImageError(f"dpas: prediction {pred.shape[:2]} and reference {ref.shape[:2]} differ in size")
        predicted, reference = self._report(pred), self._report(ref)
        values = {self.name: predicted.value - reference.value}
        values.update(
            {
                f"{self.name}.p{period}": score - reference.per_period[period]
                for period, score in predicted.per_period.items()
            }
        )
        return values


def boundary_energy(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed squared neighbour differences per column gap and per row gap.

    Returns:
        ``(columns [W - 1], rows [H - 1])``: entry ``x - 1`` holds ``sum_y (Y[y, x] - Y[y, x - 1])^2``.
    """
    signed = grey.astype(np.int32)
    horizontal = np.diff(signed, axis=1)
    vertical = np.diff(signed, axis=0)
    return (horizontal * horizontal).sum(axis=0, dtype=np.float64), (vertical * vertical).sum(axis=1, dtype=np.float64)


def seam_score(grey: np.ndarray, stride: int) -> float | None:
    """``E_boundary / E_between - 1`` for tile boundaries at multiples of ``stride``; None if no boundary fits."""
    columns, rows = boundary_energy(grey)
    return _seam_from_energy(columns, rows, grey.shape[0], grey.shape[1], stride)


def _seam_from_energy(columns: np.ndarray, rows: np.ndarray, height: int, width: int, stride: int) -> float | None:
    column_mask = np.zeros(columns.shape[0], dtype=bool)
    column_mask[stride - 1 :: stride] = True  # gap index x - 1 for boundary columns x = k * stride
    row_mask = np.zeros(rows.shape[0], dtype=bool)
    row_mask[stride - 1 :: stride] = True
    boundary_count = column_mask.sum() * height + row_mask.sum() * width
    between_count = (~column_mask).sum() * height + (~row_mask).sum() * width
    if boundary_count == 0 or between_count == 0:
        return None
    boundary = (columns[column_mask].sum() + rows[row_mask].sum()) / boundary_count
    between = (columns[~column_mask].sum() + rows[~row_mask].sum()) / between_count
    if between == 0:
        return 0.0 if boundary == 0 else float("inf")
    return float(boundary / between - 1.0)


class Seam(Metric):
    """Seam score (NR): excess gradient energy on tile boundaries; lower is better.

    Args:
        tile_stride: The method's tile stride in output pixels; without one, the maximum over 8, 16, 32, 64.
    """

    name: ClassVar[str] = "seam"
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = False

    def __init__(self, tile_stride: int | None = None) -> None:
        if tile_stride is not None and tile_stride < 2:
            raise ValueError(f"tile_stride must be >= 2 px, got {tile_stride}")
        self.tile_stride = tile_stride
        self.strides = (tile_stride,) if tile_stride else DEFAULT_PERIODS

    def settings(self) -> dict[str, Any]:
        return {
            "strides": list(self.strides),
            "grey": "opencv RGB2GRAY (8-bit)",
            "reduce": "max over strides",
            "policy": "native",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        import cv2

        grey = cv2.cvtColor(pred, cv2.COLOR_RGB2GRAY)
        columns, rows = boundary_energy(grey)
        per_stride = {}
        for stride in self.strides:
            value = _seam_from_energy(columns, rows, grey.shape[0], grey.shape[1], stride)
            if value is not None:
                per_stride[stride] = value
        if not per_stride:
            raise ImageError(f"seam: a {grey.shape[1]}x{grey.shape[0]} image holds no tile boundary at {self.strides}")
        values = {self.name: max(per_stride.values())}
        if len(per_stride) > 1:
            values.update({f"{self.name}.s{stride}": value for stride, value in per_stride.items()})
        return values
