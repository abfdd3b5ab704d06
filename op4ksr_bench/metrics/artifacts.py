"""Metrics for the artifacts of patch-free and tiled 4K SR: PAS, dPAS (see docs/metrics/pas.md) and the seam score.

``pas`` (NR) and ``dpas`` (FR) call :mod:`op4ksr_bench.metrics.periodicity`, the same code as the trainer's
L_AP loss. ``seam`` compares gradient energy on tile boundaries with same-phase control lines near them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from op4ksr_bench.errors import ImageError, UsageError
from op4ksr_bench.metrics.base import Metric
from op4ksr_bench.metrics.pairs import check_reference

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


class _Periodicity(Metric):
    """Shared options of ``pas`` and ``dpas``."""

    higher_is_better: ClassVar[bool] = False

    def __init__(self, extra_periods: Sequence[int] = (), tile_stride: int | None = None, device: str = "cpu") -> None:
        self.periods = candidate_periods(extra_periods, tile_stride)
        self.device = device
        from op4ksr_bench.metrics.memo import ImageMemo

        self._tables = ImageMemo(capacity=8)  # grid-only tables, reused for every image of the same size

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
            with periodicity.spectral_tables(self._tables):
                return periodicity.pas_luminance(periodicity.luminance_rgb8(image).to(self.device), periods)

        from op4ksr_bench.metrics import memo

        return memo.current().get((image,), ("pas", tuple(periods), self.device), compute)


class PAS(_Periodicity):
    """Periodic Artifact Score (NR): lattice-lag prominence of the high-passed luminance autocorrelation."""

    name: ClassVar[str] = "pas"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 15
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    kind: ClassVar = "NR"

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        report = self._report(pred)
        values = {self.name: report.value, f"{self.name}.period": float(report.dominant_period)}
        values.update({f"{self.name}.p{period}": score for period, score in report.per_period.items()})
        return values


class DPAS(_Periodicity):
    """dPAS (FR) = PAS(SR) - PAS(HR): periodic structure the method added beyond the reference's own."""

    name: ClassVar[str] = "dpas"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 9
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    kind: ClassVar = "FR"

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        check_reference(self.name, pred, ref)
        predicted, reference = self._report(pred), self._report(ref)
        values = {self.name: predicted.value - reference.value}
        values.update(
            {
                f"{self.name}.p{period}": score - reference.per_period[period]
                for period, score in predicted.per_period.items()
            }
        )
        return values


SEAM_STRIDES = (16, 32, 64)
"""Strides scanned when no tile stride is declared (the maximum is reported)."""
SEAM_PHASE = 24
"""Control lines lie a multiple of 24 px from their boundary: the same phase of every interpolation or
latent-cell pattern whose period divides 24 (scale factors 2, 3, 4, 6, 8, 12 and 8 px cells)."""
SEAM_CONTROL_STEPS = (-2, -1, 1, 2)
SEAM_NO_EFFECT = 0.0


def boundary_energy(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed absolute neighbour differences per column gap and per row gap of an 8-bit grey image.

    Returns:
        ``(columns [W - 1], rows [H - 1])``: entry ``x - 1`` holds ``sum_y |Y[y, x] - Y[y, x - 1]|``.
    """
    import cv2

    signed = grey.astype(np.int16)
    horizontal = cv2.absdiff(signed[:, 1:], signed[:, :-1])
    vertical = cv2.absdiff(signed[1:], signed[:-1])
    return horizontal.sum(axis=0, dtype=np.float64), vertical.sum(axis=1, dtype=np.float64)


def control_phase(stride: int) -> int | None:
    """The control spacing for boundaries every ``stride`` px: 24, or 12 when ``stride`` divides 24 (then no line
    24 px away is off the grid); None when ``stride`` also divides 12 (no control exists)."""
    for phase in (SEAM_PHASE, SEAM_PHASE // 2):
        if phase % stride != 0:
            return phase
    return None


def _line_sums(energy: np.ndarray, stride: int, phase: int) -> tuple[float, float, int]:
    """``(sum of boundary energies, sum of their control means, boundaries used)`` along one axis.

    ``energy[x - 1]`` belongs to the gap before line ``x``; boundaries are the lines ``x = k * stride``; the
    controls of ``b`` are the lines ``b + j * phase`` (``j`` in -2, -1, 1, 2) inside the image and off the grid.
    """
    lines = energy.shape[0] + 1
    boundary_total = control_total = 0.0
    used = 0
    for boundary in range(stride, lines, stride):
        controls = [
            boundary + step * phase
            for step in SEAM_CONTROL_STEPS
            if 1 <= boundary + step * phase < lines and (boundary + step * phase) % stride != 0
        ]
        if not controls:
            continue
        boundary_total += energy[boundary - 1]
        control_total += float(np.mean(energy[np.asarray(controls) - 1]))
        used += 1
    return boundary_total, control_total, used


def _seam_from_energy(columns: np.ndarray, rows: np.ndarray, stride: int) -> float | None:
    phase = control_phase(stride)
    if phase is None:
        return None
    column_boundary, column_control, column_count = _line_sums(columns, stride, phase)
    row_boundary, row_control, row_count = _line_sums(rows, stride, phase)
    if column_count + row_count == 0:
        return None
    boundary, control = column_boundary + row_boundary, column_control + row_control
    if control == 0:
        return 0.0 if boundary == 0 else float("inf")
    return float(boundary / control - 1.0)


class Seam(Metric):
    """Seam score (NR): excess gradient energy on tile boundaries over same-phase control lines; 0 = no seam.

    For boundaries at multiples of the stride ``S``, ``E_b`` is the summed absolute difference across each boundary
    line (columns and rows) and ``E_c`` the mean of the same quantity on its control lines ``b + j * 24``
    (``j = -2, -1, 1, 2``, inside the image, off the grid): ``seam = sum E_b / sum E_c - 1``. Controls share the
    boundary's phase of any pattern whose period divides 24 (interpolation at x2, x3, x4, x6, x8, 8 px latent
    cells), so such patterns cancel; being near the boundary they see the same content. Positive: the boundaries
    carry more edge energy than their surroundings (visible seams); negative: less (boundaries smoothed, e.g. by
    a blend); the no-seam level is 0 (``ideal``), and the leaderboard ranks by the distance to it.

    Args:
        tile_stride: The method's tile stride in output pixels; without one, the maximum over 16, 32 and 64.
    """

    name: ClassVar[str] = "seam"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 16
    score_range: ClassVar[tuple[float, float]] = (-1.0, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = False
    ideal: ClassVar[float | None] = SEAM_NO_EFFECT

    def __init__(self, tile_stride: int | None = None) -> None:
        if tile_stride is not None and (tile_stride < 2 or control_phase(tile_stride) is None):
            raise UsageError(
                f"seam: tile stride {tile_stride} px cannot be scored (it must be >= 2 px and not divide 12, so that "
                "lines 12 or 24 px away lie off the tile grid); use tiles at least 16 px apart"
            )
        self.tile_stride = tile_stride
        self.strides = (tile_stride,) if tile_stride else SEAM_STRIDES

    def settings(self) -> dict[str, Any]:
        return {
            "strides": list(self.strides),
            "grey": "opencv RGB2GRAY (8-bit)",
            "controls": f"lines b + j * {SEAM_PHASE} px, j in -2, -1, 1, 2 (12 px when the stride divides 24)",
            "reduce": "max over strides" if len(self.strides) > 1 else "declared tile stride",
            "ideal": SEAM_NO_EFFECT,
            "policy": "native",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        import cv2

        grey = cv2.cvtColor(pred, cv2.COLOR_RGB2GRAY)
        columns, rows = boundary_energy(grey)
        per_stride = {}
        for stride in self.strides:
            value = _seam_from_energy(columns, rows, stride)
            if value is not None:
                per_stride[stride] = value
        if not per_stride:
            raise ImageError(
                f"seam: a {grey.shape[1]}x{grey.shape[0]} image holds no tile boundary with a control line at "
                f"strides {', '.join(map(str, self.strides))}; it needs at least {2 * SEAM_PHASE} px per side"
            )
        values = {self.name: max(per_stride.values())}
        if len(per_stride) > 1:
            values.update({f"{self.name}.s{stride}": value for stride, value in per_stride.items()})
        return values
