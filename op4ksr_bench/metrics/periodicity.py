"""Periodicity of an image: the normalised autocorrelation of its high-passed luminance and lattice-lag peaks.

One differentiable torch implementation serves both the benchmark's Periodic Artifact Score (PAS, ``pas``
and ``dpas`` metrics) and the reference trainer's L_AP loss (:func:`periodicity_loss`), so metric and loss
never disagree. The definition is written out in ``docs/metrics/pas.md``; in short, for an RGB image in
``[0, 1]``:

1. ``Y`` = BT.601 luma (0.299 R + 0.587 G + 0.114 B).
2. ``Z = (Y - mean(Y)) * T``, with ``T`` a separable raised-cosine taper that falls to 0 over ``ramp`` pixels
   at every border, so that neither the zero padding nor the high-pass sees a step at the image edge.
3. ``X = Z - G_sigma * Z``: Gaussian high-pass (``sigma`` px), applied as a transfer function in the
   Fourier domain of a zero-padded grid.
4. ``R(d) = [sum_p X(p) X(p + d)] / [sum_p T(p) T(p + d)]``, normalised so ``R(0) = 1`` (Wiener-Khinchin:
   one zero-padded ``rfft2``, the power spectrum, one ``irfft2``; padding by the largest lag needed makes
   every used lag an exact linear, not circular, autocorrelation).
5. For a period ``P``: prominence of ``R`` at the lattice lags ``(k P, 0)``, ``(0, k P)``, ``(k P, k P)``,
   ``k = 1..K``, each over its local background (the mean of ``R`` on the square annulus of Chebyshev radius
   2 to 4 px around the lag); the per-period score is the mean of those prominences. PAS is the maximum over
   the candidate periods; the dominant period is the smallest one scoring at least 0.8 of that maximum.

Shapes: images are ``[B, 3, H, W]`` float in ``[0, 1]``; scores are ``[B, len(periods)]``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as functional

from op4ksr_bench.metrics.memo import ImageMemo

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""BT.601 luma weights, as for the Y of Y'CbCr (without the studio-range offset, which the high-pass removes)."""

DEFAULT_PERIODS = (8, 16, 32, 64)
"""Candidate periods in pixels: latent (8, 16) and token (16, 32) pitches of stock and F16 VAEs, and 64."""

DEFAULT_MULTIPLES = 4
"""Lattice multiples ``k = 1..K`` examined per period (fewer where the image is too small)."""

DEFAULT_HIGHPASS_SIGMA = 2.0
"""Standard deviation (px) of the Gaussian whose low-pass is removed from the luminance."""

DEFAULT_RAMP = 32
"""Width (px) of the raised-cosine taper at each border (at most a quarter of the shorter side)."""

DOMINANCE_FRACTION = 0.8
"""The dominant period is the smallest candidate scoring at least this fraction of the best score.

A pattern of period P also peaks at every multiple of P, so 2P and 4P score as high as P; the smallest
near-maximal period is the fundamental.
"""

DIRECTIONS = ((0, 1), (1, 0), (1, 1))
"""Lattice directions as (dy, dx) unit steps: horizontal lag (0, kP), vertical (kP, 0), diagonal (kP, kP)."""


BACKGROUND_RADII = (2, 4)
"""Inner and outer Chebyshev radius (px) of the square annulus whose mean is a lattice lag's local background.

The same for every period, so a pattern's multiples (P, 2P, 4P) score alike and the fundamental can be named.
"""

FLAT_ENERGY = 1e-10
"""Zero-lag autocorrelation (mean square of the high-passed luminance, images in ``[0, 1]``) below which an image
counts as flat: its normalised autocorrelation, lattice prominences and PAS are 0 instead of ``0 / 0``.

1e-10 is an RMS of 1e-5, 0.0026 of one 8-bit level. Textured content is far above it (8-bit quantisation alone
leaves an RMS of about 1 / 255 / sqrt(12) = 1.1e-3 wherever the image varies); a constant image gives exactly 0
or float rounding of about 1e-16. Above the threshold nothing changes, bit for bit.
"""


def luminance(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``[B, 3, H, W]`` RGB in ``[0, 1]`` -> ``[B, 1, H, W]`` in ``[0, 1]``."""
    _check_image(image)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device)
    return torch.einsum("bchw,c->bhw", image, weights).unsqueeze(1)


def luminance_rgb8(array) -> torch.Tensor:
    """:func:`luminance` of an 8-bit image, without the float RGB copy: ``uint8`` ``H x W x 3`` -> ``[1, 1, H, W]``.

    ``float32`` in ``[0, 1]``; equals ``luminance(to_tensor(array))`` to float32 rounding (about 1e-7). The metric
    path uses it (one pass of OpenCV's ``transform`` instead of a 3-channel float tensor).
    """
    import cv2
    import numpy as np

    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 array, got {getattr(array, 'shape', type(array).__name__)}")
    matrix = np.asarray([LUMA_WEIGHTS], dtype=np.float64) / 255.0
    luma = cv2.transform(array.astype(np.float32), matrix.astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(luma).reshape(array.shape[:2]))[None, None]


def taper_window(length: int, ramp: int, *, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """1-D raised-cosine (Tukey) window: rises from ~0 to 1 over ``ramp`` samples at each end. Shape ``[length]``."""
    window = torch.ones(length, dtype=torch.float64)
    ramp = max(0, min(ramp, length // 2))
    if ramp:
        position = (torch.arange(ramp, dtype=torch.float64) + 0.5) / ramp
        rise = 0.5 * (1.0 - torch.cos(math.pi * position))
        window[:ramp] = rise
        window[length - ramp :] = rise.flip(0)
    return window.to(dtype=dtype, device=device)


def effective_ramp(height: int, width: int, ramp: int = DEFAULT_RAMP) -> int:
    """The taper width actually used: ``ramp`` capped at a quarter of the shorter side."""
    return max(0, min(ramp, min(height, width) // 4))


def luminance_highpass(
    image: torch.Tensor, sigma: float = DEFAULT_HIGHPASS_SIGMA, ramp: int = DEFAULT_RAMP
) -> torch.Tensor:
    """Tapered, zero-mean, Gaussian-high-passed luminance (steps 1-3 of the module definition).

    Args:
        image: ``[B, 3, H, W]`` RGB in ``[0, 1]`` (any float dtype; differentiable).
        sigma: High-pass Gaussian standard deviation in pixels.
        ramp: Border taper width in pixels (capped by :func:`effective_ramp`).

    Returns:
        ``[B, 1, H, W]``; invariant to ``image -> a * image + b`` up to the factor ``a``.
    """
    tapered, window_y, window_x = _tapered_luminance(luminance(image), ramp)
    height, width = tapered.shape[-2:]
    margin = int(math.ceil(4 * sigma)) + 1
    size = (_fast_length(height + 2 * margin), _fast_length(width + 2 * margin))
    spectrum = torch.fft.rfft2(tapered, s=size) * _highpass_transfer(size, sigma, tapered.dtype, tapered.device)
    return torch.fft.irfft2(spectrum, s=size)[..., :height, :width]


def autocorrelation(
    x: torch.Tensor, max_lag: int | None = None, window: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Normalised linear autocorrelation by Wiener-Khinchin, in FFT lag order.

    ``R(d) = [sum_p x(p) x(p + d)] / [sum_p w(p) w(p + d)]`` divided by its value at ``d = 0``, where ``w`` is
    ``window`` (a separable ``(w_y [H], w_x [W])`` pair the signal was multiplied by) or all ones (then the
    denominator is the overlap count: the unbiased estimator).

    Args:
        x: ``[B, 1, H, W]`` signal (typically :func:`luminance_highpass` of an image).
        max_lag: Largest ``|dy|`` and ``|dx|`` computed exactly; lags beyond it are set to 0. Default: every lag
            an ``H x W`` array can hold.
        window: Separable window of the signal, for the denominator.

    Returns:
        ``[B, 1, H, W]``; element ``[..., i, j]`` holds lag ``(i, j)`` for ``i < ceil(H / 2)`` and lag ``i - H``
        above (likewise ``j``), as ``torch.fft.fftfreq`` orders frequencies. ``R(0) = 1``.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"autocorrelation expects a [B, 1, H, W] tensor, got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    limit = max(height, width) // 2 if max_lag is None else max_lag
    lag_y = torch.fft.fftfreq(height, d=1.0 / height).round().long()
    lag_x = torch.fft.fftfreq(width, d=1.0 / width).round().long()
    raw, size = _raw_autocorrelation(x, limit)
    rows = (lag_y % size[0]).to(x.device)
    cols = (lag_x % size[1]).to(x.device)
    values = raw.index_select(-2, rows).index_select(-1, cols)
    if window is None:
        window = (torch.ones(height, dtype=x.dtype, device=x.device), torch.ones(width, dtype=x.dtype, device=x.device))
    norm_y = _window_autocorrelation(window[0], lag_y.to(x.device))
    norm_x = _window_autocorrelation(window[1], lag_x.to(x.device))
    values = values / (norm_y[:, None] * norm_x[None, :])
    values = _normalise_by_zero_lag(values, values[..., :1, :1])
    inside = (lag_y.abs() <= limit)[:, None] & (lag_x.abs() <= limit)[None, :]
    return values * inside.to(device=x.device, dtype=x.dtype)


def lattice_peaks(
    image: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> list[torch.Tensor]:
    """Prominence of every lattice lag: one ``[B, 3 * K_P]`` tensor per period (directions x multiples).

    ``K_P = min(multiples, (min(H, W) // 2 - 4) // P)`` so every lag and its background stay within half the
    image. Same arguments as :func:`lattice_prominence`. The order is direction-major: horizontal
    ``(0, kP)`` for ``k = 1..K``, then vertical ``(kP, 0)``, then diagonal ``(kP, kP)``.

    Raises:
        ValueError: a period is below 4 px or too large for the image (fewer than one lattice multiple fits).
    """
    _check_image(image)
    return luminance_lattice_peaks(luminance(image), periods, multiples=multiples, sigma=sigma, ramp=ramp)


def luminance_lattice_peaks(
    luma: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> list[torch.Tensor]:
    """:func:`lattice_peaks` of a luminance ``[B, 1, H, W]`` (steps 2-5 of the module definition)."""
    if not isinstance(luma, torch.Tensor) or luma.ndim != 4 or luma.shape[1] != 1 or not luma.is_floating_point():
        raise ValueError(f"expected a float [B, 1, H, W] luminance, got {getattr(luma, 'shape', type(luma).__name__)}")
    height, width = luma.shape[-2:]
    counts = [lattice_multiples(height, width, period, multiples) for period in periods]
    for period, count in zip(periods, counts, strict=True):
        if period < 4:
            raise ValueError(f"period {period} px is too small; periods start at 4 px")
        if count < 1:
            need = 2 * (period + BACKGROUND_RADII[1])
            raise ValueError(f"period {period} px needs an image of at least {need}x{need} px, got {width}x{height}")
    max_lag = max(count * period for period, count in zip(periods, counts, strict=True)) + BACKGROUND_RADII[1]
    lag_sets = []
    ring = _ring_offsets(luma.device)  # [N, 2]
    for period, count in zip(periods, counts, strict=True):
        centres = torch.tensor(
            [(step_y * k * period, step_x * k * period) for step_y, step_x in DIRECTIONS for k in range(1, count + 1)],
            device=luma.device,
        )  # [L, 2]
        lag_sets.append(
            torch.cat([centres[:, None, :], centres[:, None, :] + ring[None, :, :]], dim=1)
        )  # [L, 1 + N, 2]
    zero_lag = torch.zeros((1, 1, 2), dtype=torch.long, device=luma.device)
    every_dy = torch.cat([zero_lag[..., 0].flatten()] + [lags[..., 0].flatten() for lags in lag_sets])
    rows = torch.unique(every_dy)  # sorted distinct vertical lags
    tapered, window_y, window_x = _tapered_luminance(luma, ramp)
    raw, size = _raw_autocorrelation_rows(tapered, max_lag, sigma, rows)  # [B, len(rows), Wp]
    zero = _gather_normalised(raw, size, rows, zero_lag, window_y, window_x)[:, 0, :]  # [B, 1]
    results = []
    for lags in lag_sets:
        values = _normalise_by_zero_lag(_gather_normalised(raw, size, rows, lags, window_y, window_x), zero[:, :, None])
        results.append(values[:, :, 0] - values[:, :, 1:].mean(dim=2))
    return results


def lattice_prominence(
    image: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> torch.Tensor:
    """Per-period PAS: mean lattice-lag prominence of the high-passed luminance's autocorrelation.

    Args:
        image: ``[B, 3, H, W]`` RGB in ``[0, 1]``, any float dtype; differentiable.
        periods: Candidate periods in pixels.
        multiples: Lattice multiples ``K`` per direction (reduced where the image is small).
        sigma: High-pass Gaussian sigma in pixels.
        ramp: Border taper width in pixels.

    Returns:
        ``[B, len(periods)]``: about 0 without periodic structure, up to 1 for a purely periodic high-pass
        signal (the fraction of high-frequency energy that repeats on the lattice).
    """
    peaks = lattice_peaks(image, periods, multiples=multiples, sigma=sigma, ramp=ramp)
    return torch.stack([values.mean(dim=1) for values in peaks], dim=1)


def periodicity_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> torch.Tensor:
    """L_AP: lattice peaks of the prediction in excess of the target's own, ``mean(relu(p_pred - p_target))``.

    Each lattice lag is compared with the same lag of the target, so periodic textures the target really
    has (bricks, fabric) are not penalised. Gradients flow into ``prediction`` only.

    Args:
        prediction: ``[B, 3, H, W]`` in ``[0, 1]``.
        target: ``[B, 3, H, W]`` in ``[0, 1]``, same shape.

    Returns:
        Scalar tensor.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    options = {"multiples": multiples, "sigma": sigma, "ramp": ramp}
    predicted = torch.cat(lattice_peaks(prediction, periods, **options), dim=1)
    with torch.no_grad():
        reference = torch.cat(lattice_peaks(target.to(prediction.dtype), periods, **options), dim=1)
    return functional.relu(predicted - reference).mean()


@dataclass(frozen=True)
class PasReport:
    """PAS of one image: the score per period, the dominant period and PAS itself (the maximum)."""

    per_period: dict[int, float]
    dominant_period: int
    value: float


def pas(
    image: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> PasReport:
    """PAS of a single image ``[1, 3, H, W]`` (no gradient): per-period scores, dominant period, maximum."""
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"pas expects one image [1, 3, H, W], got shape {tuple(image.shape)}")
    _check_image(image)
    with torch.no_grad():
        return pas_luminance(luminance(image), periods, multiples=multiples, sigma=sigma, ramp=ramp)


def pas_luminance(
    luma: torch.Tensor,
    periods: Sequence[int] = DEFAULT_PERIODS,
    *,
    multiples: int = DEFAULT_MULTIPLES,
    sigma: float = DEFAULT_HIGHPASS_SIGMA,
    ramp: int = DEFAULT_RAMP,
) -> PasReport:
    """:func:`pas` of one luminance ``[1, 1, H, W]`` (e.g. from :func:`luminance_rgb8`); no gradient."""
    if luma.ndim != 4 or luma.shape[0] != 1:
        raise ValueError(f"pas expects one luminance [1, 1, H, W], got shape {tuple(luma.shape)}")
    with torch.no_grad():
        peaks = luminance_lattice_peaks(luma, periods, multiples=multiples, sigma=sigma, ramp=ramp)
        scores = torch.stack([values.mean(dim=1) for values in peaks], dim=1)[0]
    per_period = {int(period): float(score) for period, score in zip(periods, scores.tolist(), strict=True)}
    return PasReport(per_period=per_period, dominant_period=dominant_period(per_period), value=max(per_period.values()))


def dominant_period(per_period: dict[int, float]) -> int:
    """Smallest period whose score is at least :data:`DOMINANCE_FRACTION` of the best (the best if none > 0)."""
    best_period = max(per_period, key=lambda period: per_period[period])
    best = per_period[best_period]
    if best <= 0:
        return best_period
    return min(period for period, score in per_period.items() if score >= DOMINANCE_FRACTION * best)


def lattice_multiples(height: int, width: int, period: int, multiples: int = DEFAULT_MULTIPLES) -> int:
    """How many lattice multiples of ``period`` fit: ``k P + 4 <= min(H, W) // 2``, at most ``multiples``."""
    return max(0, min(multiples, (min(height, width) // 2 - BACKGROUND_RADII[1]) // period))


# ------------------------------------------------------------------------------------------------------ internals


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected a [B, 3, H, W] tensor, got {getattr(image, 'shape', type(image).__name__)}")
    if not image.is_floating_point():
        raise ValueError(f"expected a float tensor in [0, 1], got dtype {image.dtype}")


def _tapered_luminance(luma: torch.Tensor, ramp: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-mean luminance ``[B, 1, H, W]`` times the separable taper; also returns the taper ``(w_y, w_x)``."""
    height, width = luma.shape[-2:]
    used = effective_ramp(height, width, ramp)
    window_y = taper_window(height, used, dtype=luma.dtype, device=luma.device)
    window_x = taper_window(width, used, dtype=luma.dtype, device=luma.device)
    centred = luma - luma.mean(dim=(-2, -1), keepdim=True)
    return centred.mul_(window_y[:, None]).mul_(window_x[None, :]), window_y, window_x


def _fast_length(length: int) -> int:
    """Smallest 2-3-5-smooth integer >= ``length`` that is even (fast for real FFTs)."""
    candidate = length + (length % 2)
    while True:
        remainder = candidate
        for factor in (2, 3, 5):
            while remainder % factor == 0:
                remainder //= factor
        if remainder == 1:
            return candidate
        candidate += 2


def _highpass_transfer(size: tuple[int, int], sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``1 - exp(-2 pi^2 sigma^2 |f|^2)`` on the ``rfft2`` grid of ``size``. Shape ``[Hp, Wp // 2 + 1]``."""
    real_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    freq_y = torch.fft.fftfreq(size[0], dtype=real_dtype, device=device)
    freq_x = torch.fft.rfftfreq(size[1], dtype=real_dtype, device=device)
    radius2 = freq_y[:, None] ** 2 + freq_x[None, :] ** 2
    return 1.0 - torch.exp(-2.0 * math.pi**2 * sigma**2 * radius2)


_TABLES: contextvars.ContextVar[ImageMemo | None] = contextvars.ContextVar("op4ksr_bench_spectral_tables", default=None)


@contextlib.contextmanager
def spectral_tables(tables: ImageMemo) -> Iterator[None]:
    """Keep the tables that depend only on the grid (high-pass transfer, row DFT) in ``tables`` inside this block.

    The caller owns ``tables`` (a PAS metric keeps one for its lifetime: computing the transfer of a 4K grid is a
    noticeable part of a 4K PAS call); outside any block every table is computed for the call that needs it.
    """
    token = _TABLES.set(tables)
    try:
        yield
    finally:
        _TABLES.reset(token)


def _table(key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    tables = _TABLES.get()
    return compute() if tables is None else tables.get((), key, compute)


def _highpass_power_transfer(
    size: tuple[int, int], sigma: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``|H|^2`` of :func:`_highpass_transfer` (constant: no gradient flows through it); see :func:`spectral_tables`."""
    return _table(
        ("highpass", size, sigma, dtype, device), lambda: _highpass_transfer(size, sigma, dtype, device).square()
    )


def _rfft2(signal: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.rfft2(signal, s=size)``; without autograd on CPU, scipy's pocketfft computes the same transform
    (about 2x less CPU time than torch's at 4K; results equal to float rounding)."""
    if signal.device.type != "cpu" or (torch.is_grad_enabled() and signal.requires_grad):
        return torch.fft.rfft2(signal, s=size)
    import scipy.fft

    return torch.from_numpy(scipy.fft.rfft2(signal.detach().numpy(), s=size))


def _padded_power(signal: torch.Tensor, max_lag: int, sigma: float | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """Power spectrum of ``signal`` zero-padded by ``max_lag`` (plus the high-pass support), optionally high-passed.

    With a high-pass, the filtered signal extends about ``4 sigma`` beyond the frame; the padding covers it, so
    every lag up to ``max_lag`` of the inverse transform is an exact linear autocorrelation.
    """
    height, width = signal.shape[-2:]
    extra = 0 if sigma is None else 2 * (int(math.ceil(4 * sigma)) + 1)
    size = (_fast_length(height + max_lag + extra), _fast_length(width + max_lag + extra))
    parts = torch.view_as_real(_rfft2(signal, size))  # [..., 2]: real and imaginary parts
    parts = parts.square() if parts.requires_grad else parts.square_()
    power = parts[..., 0] + parts[..., 1]
    if sigma is not None:
        transfer = _highpass_power_transfer(size, float(sigma), power.dtype, power.device)
        power = power.mul_(transfer) if not power.requires_grad else power * transfer
    return power, size


def _raw_autocorrelation(
    signal: torch.Tensor, max_lag: int, sigma: float | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Un-normalised linear autocorrelation on the padded grid: lag d at index d mod size. ``[B, 1, Hp, Wp]``."""
    power, size = _padded_power(signal, max_lag, sigma)
    return torch.fft.irfft2(power, s=size), size


def _row_dft(length: int, rows: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[cos; sin](2 pi k r / length) / length`` for ``r`` in ``rows``, ``k = 0..length-1``: ``[2 len(rows), length]``.

    The phase is reduced modulo ``length`` in integers first, so it stays exact for long transforms. Kept in the
    enclosing :func:`spectral_tables`, if any.
    """
    return _table(("rows", length, rows, dtype, device), lambda: _compute_row_dft(length, rows, dtype, device))


def _compute_row_dft(length: int, rows: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    frequencies = torch.arange(length, dtype=torch.int64)
    lags = torch.tensor(rows, dtype=torch.int64)
    phase = (lags[:, None] * frequencies[None, :]).remainder(length).to(torch.float64) * (2 * math.pi / length)
    matrix = torch.cat([torch.cos(phase), torch.sin(phase)]) / length
    return matrix.to(dtype=dtype, device=device)


def _raw_autocorrelation_rows(
    signal: torch.Tensor, max_lag: int, sigma: float | None, rows: torch.Tensor
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Only the rows ``rows`` (vertical lags) of :func:`_raw_autocorrelation`: ``[B, len(rows), Wp]``.

    The vertical inverse transform is evaluated only at the wanted lags, as one matrix product of the power
    spectrum with a ``[2 len(rows), Hp]`` cosine/sine table (a few dozen rows instead of ``Hp``); then each row
    is transformed along the horizontal axis.
    """
    power, size = _padded_power(signal, max_lag, sigma)
    real_dtype = power.dtype
    table = _row_dft(size[0], tuple(int(row) for row in rows.tolist()), real_dtype, power.device)
    halves = torch.matmul(table, power[:, 0])  # [B, 2R, Wp // 2 + 1]: real and imaginary parts
    count = rows.shape[0]
    picked = torch.complex(halves[:, :count], halves[:, count:])
    return torch.fft.irfft(picked, n=size[1], dim=-1), size


def _window_autocorrelation(window: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """``sum_t w(t) w(t + |d|)`` for each lag ``d`` in ``lags`` (1-D). Same shape as ``lags``."""
    length = window.shape[0]
    size = 2 * length
    spectrum = torch.fft.rfft(window, n=size)
    full = torch.fft.irfft(spectrum.real.square() + spectrum.imag.square(), n=size)
    return full[lags.abs().clamp(max=length - 1)] * (lags.abs() < length)


def _ring_offsets(device: torch.device) -> torch.Tensor:
    """Offsets ``(dy, dx)`` with Chebyshev distance in ``BACKGROUND_RADII`` (inclusive): ``[N, 2]``."""
    inner, outer = BACKGROUND_RADII
    span = torch.arange(-outer, outer + 1, device=device)
    grid_y, grid_x = torch.meshgrid(span, span, indexing="ij")
    distance = torch.maximum(grid_y.abs(), grid_x.abs())
    on_ring = (distance >= inner) & (distance <= outer)
    return torch.stack([grid_y[on_ring], grid_x[on_ring]], dim=1)


def _normalise_by_zero_lag(values: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """``values / zero``, and exactly 0 (with a zero, finite gradient) where ``zero`` <= :data:`FLAT_ENERGY`."""
    flat = zero <= FLAT_ENERGY
    safe = torch.where(flat, torch.ones_like(zero), zero)  # no 0 / 0 in either branch, so no NaN gradient
    return torch.where(flat, torch.zeros_like(values), values / safe)


def _gather_normalised(
    raw: torch.Tensor,
    size: tuple[int, int],
    rows: torch.Tensor,
    lags: torch.Tensor,
    window_y: torch.Tensor,
    window_x: torch.Tensor,
) -> torch.Tensor:
    """Raw autocorrelation at ``lags`` (``[..., 2]`` of (dy, dx)) divided by the window's. ``[B, *lags.shape[:-1]]``.

    ``raw`` is ``[B, len(rows), Wp]``: the rows of the padded autocorrelation for the vertical lags ``rows``.
    """
    dy, dx = lags[..., 0], lags[..., 1]
    row_position = torch.searchsorted(rows, dy.flatten().contiguous()).view(dy.shape)
    index = row_position * size[1] + (dx % size[1])
    values = raw.flatten(start_dim=1)[:, index.flatten()].view(raw.shape[0], *index.shape)
    norm = _window_autocorrelation(window_y, dy) * _window_autocorrelation(window_x, dx)
    return values / norm
