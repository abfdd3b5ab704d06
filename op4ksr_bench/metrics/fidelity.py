"""Native full-reference fidelity metrics: PSNR, SSIM (RGB and Y), MS-SSIM.

Conventions (recorded in every result through :meth:`Metric.settings`):

* Inputs are 8-bit RGB; ``data_range`` is 255.
* ``crop_border`` pixels are removed from every side of both images before scoring (the suite decides;
  the usual SR convention is the scale factor).
* Y is BT.601 luma as MATLAB's ``rgb2ycbcr`` defines it, ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``
  for ``R, G, B`` in ``[0, 255]``, kept as float (not rounded to 8 bits, as BasicSR and scikit-image do).
* SSIM is Wang et al.'s: 11x11 Gaussian window with sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population
  statistics, the mean of the SSIM map over the 'valid' region (5 px from each edge), and for RGB the mean
  of the per-channel values. This equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)``.
* MS-SSIM is Wang et al.'s five-scale product with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333): the
  channel-mean contrast-structure term (clamped at 0) at scales 1-4 and the SSIM at scale 5, with 2x2
  average pooling between scales (zero-padded on odd sizes, as pyiqa's ``ms_ssim``).

The SSIM filtering runs through OpenCV's separable filter in float32 over horizontal strips into reused
buffers, so the temporaries stay small. Four filtered maps suffice: the means of ``x + y`` and ``x - y`` give
``mu_x mu_y`` and ``mu_x^2 + mu_y^2``, and the means of ``x^2 + y^2`` and ``x y`` the second moments. The float32
result agrees with scikit-image's float64 one to about 1e-6. Metrics scoring the same arrays share work
through :mod:`op4ksr_bench.metrics.memo` within one scoring call: ``psnr-y`` and ``ssim-y`` compute Y once, and
``ssim`` and ``ms-ssim`` share the full-resolution SSIM pass.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from op4ksr_bench.errors import ImageError
from op4ksr_bench.metrics import memo
from op4ksr_bench.metrics.base import Metric
from op4ksr_bench.metrics.pairs import check_same_size

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
YCBCR_Y_WEIGHTS = (65.481, 128.553, 24.966)
STRIP_ROWS = 64
"""Output rows processed per strip: keeps each of the six float32 buffers near 3.3 MB at 4096 px wide (RGB)."""


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from each side (no copy). ``border = 0`` returns ``image`` unchanged."""
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return image
    if image.shape[0] <= 2 * border or image.shape[1] <= 2 * border:
        raise ImageError(f"crop_border {border} leaves nothing of a {image.shape[1]}x{image.shape[0]} image")
    return image[border:-border, border:-border]


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``uint8`` ``H x W x 3`` RGB as MATLAB's ``rgb2ycbcr``: ``float64`` ``H x W`` in [16, 235]."""
    import cv2

    # one float64 table per channel (w_c v / 255, exact to 1 ulp), summed: within 1e-13 of the exact value
    tables = _y_tables()
    luma = cv2.LUT(image[:, :, 0], tables[0])
    luma = cv2.add(luma, cv2.LUT(image[:, :, 1], tables[1]), dst=luma)
    luma = cv2.add(luma, cv2.LUT(image[:, :, 2], tables[2]), dst=luma)
    return luma


def _y_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    levels = np.arange(256, dtype=np.float64)
    return (
        levels * YCBCR_Y_WEIGHTS[0] / 255.0 + 16.0,
        levels * YCBCR_Y_WEIGHTS[1] / 255.0,
        levels * YCBCR_Y_WEIGHTS[2] / 255.0,
    )


def psnr(pred: np.ndarray, ref: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``; ``inf`` for identical images."""
    check_same_size(pred, ref)
    if pred.dtype == np.uint8 and ref.dtype == np.uint8:
        import cv2

        squared = cv2.norm(pred, ref, cv2.NORM_L2SQR)  # exact integer sum, accumulated in double
        mse = squared / pred.size
    else:
        import cv2

        squared = cv2.norm(np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64), cv2.NORM_L2SQR)
        mse = squared / pred.size
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(pred: np.ndarray, ref: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM of ``H x W`` or ``H x W x C`` images (mean over channels); see the module conventions."""
    return float(np.mean(_ssim_statistics(pred, ref, data_range).ssim))


def ms_ssim(pred: np.ndarray, ref: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Five-scale MS-SSIM of ``H x W`` or ``H x W x C`` images; the shorter side must be at least 176 px."""
    return _ms_ssim(pred, ref, data_range)


def _ms_ssim(pred: np.ndarray, ref: np.ndarray, data_range: float, first: SsimStatistics | None = None) -> float:
    """MS-SSIM; ``first`` is the full-resolution pass if already computed (``_ssim_statistics(pred, ref)``)."""
    check_same_size(pred, ref)
    _check_ms_ssim_size(pred)
    x, y = pred, ref  # the first scale converts strip by strip
    contrast_structure = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        statistics = first if scale == 0 and first is not None else _ssim_statistics(x, y, data_range, last)
        contrast_structure.append(max(float(np.mean(statistics.clamped_cs)), 0.0))
        if not last:
            x, y = _average_pool(x), _average_pool(y)
    last_ssim = max(float(np.mean(statistics.clamped_ssim)), 0.0)
    value = last_ssim ** MS_SSIM_WEIGHTS[-1]
    for cs, weight in zip(contrast_structure[:-1], MS_SSIM_WEIGHTS[:-1], strict=True):
        value *= cs**weight
    return float(value)


def _check_ms_ssim_size(image: np.ndarray) -> None:
    minimum = (SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 16
    if min(image.shape[:2]) < minimum:
        raise ImageError(
            f"ms-ssim needs images of at least {minimum}x{minimum} px, got {image.shape[1]}x{image.shape[0]}"
        )


def _gaussian_kernel() -> np.ndarray:
    radius = SSIM_WINDOW // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return (kernel / kernel.sum()).astype(np.float32)


class SsimStatistics(NamedTuple):
    """Per-channel means over the valid region (``[C]`` each): the SSIM map, the contrast-structure map clamped
    at 0 (MS-SSIM's scales 1-4), and the SSIM map with that clamped term (its last scale; only on request)."""

    ssim: np.ndarray
    clamped_cs: np.ndarray
    clamped_ssim: np.ndarray | None


def _ssim_statistics(
    pred: np.ndarray, ref: np.ndarray, data_range: float, clamped_ssim: bool = False
) -> SsimStatistics:
    """One SSIM pass over ``H x W`` or ``H x W x C`` images (any real dtype), strip by strip in float32."""
    import cv2

    check_same_size(pred, ref)
    height, width = pred.shape[:2]
    pad = SSIM_WINDOW // 2
    if height <= 2 * pad or width <= 2 * pad:
        raise ImageError(f"ssim needs images larger than {2 * pad}x{2 * pad} px, got {width}x{height}")
    channels = 1 if pred.ndim == 2 else pred.shape[2]
    if channels > 4:
        raise ImageError(f"ssim takes at most 4 channels, got {channels}")
    kernel = _gaussian_kernel()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    sums = np.zeros((3, channels), dtype=np.float64)  # ssim, clamped cs, clamped ssim
    out_rows = height - 2 * pad
    strip = min(STRIP_ROWS, out_rows) + 2 * pad
    buffers = [np.empty((strip, *pred.shape[1:]), dtype=np.float32) for _ in range(6)]
    valid = (slice(pad, -pad), slice(pad, -pad))

    def blur(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        cv2.sepFilter2D(source, cv2.CV_32F, kernel, kernel, dst=target, borderType=cv2.BORDER_REFLECT)
        return target[valid]

    for start in range(0, out_rows, STRIP_ROWS):
        stop = min(out_rows, start + STRIP_ROWS)
        rows = stop - start + 2 * pad
        x, y = pred[start : stop + 2 * pad], ref[start : stop + 2 * pad]
        total, difference, total2, difference2, squares, cross = (buffer[:rows] for buffer in buffers)
        cv2.add(x, y, dst=total, dtype=cv2.CV_32F)
        cv2.subtract(x, y, dst=difference, dtype=cv2.CV_32F)
        cv2.multiply(total, total, dst=total2)
        cv2.multiply(difference, difference, dst=difference2)
        cv2.addWeighted(total2, 0.5, difference2, 0.5, 0.0, dst=squares)  # x^2 + y^2
        cv2.addWeighted(total2, 0.25, difference2, -0.25, 0.0, dst=cross)  # x y
        mean_total, mean_difference = blur(total, total2), blur(difference, difference2)
        mean_squares, mean_cross = blur(squares, total), blur(cross, difference)
        luminance_top, luminance_bottom = squares[valid], cross[valid]  # buffers free again: reused as outputs
        mean_total = cv2.multiply(mean_total, mean_total, dst=mean_total)
        mean_difference = cv2.multiply(mean_difference, mean_difference, dst=mean_difference)
        # 2 mu_x mu_y + C1 and mu_x^2 + mu_y^2 + C1
        luminance_top = cv2.addWeighted(mean_total, 0.5, mean_difference, -0.5, c1, dst=luminance_top)
        luminance_bottom = cv2.addWeighted(mean_total, 0.5, mean_difference, 0.5, c1, dst=luminance_bottom)
        # contrast-structure (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
        mean_cross = cv2.addWeighted(mean_cross, 2.0, luminance_top, -1.0, c1 + c2, dst=mean_cross)
        mean_squares = cv2.addWeighted(mean_squares, 1.0, luminance_bottom, -1.0, c1 + c2, dst=mean_squares)
        contrast = cv2.divide(mean_cross, mean_squares, dst=mean_cross)
        luminance = cv2.divide(luminance_top, luminance_bottom, dst=luminance_top)
        product = cv2.multiply(luminance, contrast, dst=luminance_bottom)
        sums[0] += cv2.sumElems(product)[:channels]
        contrast = cv2.max(contrast, 0.0, dst=contrast)
        sums[1] += cv2.sumElems(contrast)[:channels]
        if clamped_ssim:
            sums[2] += cv2.sumElems(cv2.multiply(luminance, contrast, dst=luminance))[:channels]
    means = sums / (out_rows * (width - 2 * pad))
    return SsimStatistics(means[0], means[1], means[2] if clamped_ssim else None)


def _average_pool(image: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2; odd sizes are zero-padded by one pixel on both sides (pyiqa's ms_ssim)."""
    import cv2

    image = image.astype(np.float32, copy=False)
    pad_y, pad_x = image.shape[0] % 2, image.shape[1] % 2
    if pad_y or pad_x:
        widths = [(pad_y, pad_y), (pad_x, pad_x)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, widths)
        image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    # OpenCV's area interpolation at exactly half size is the 2x2 mean (same value as summing the four pixels)
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------------------- classes


class _Fidelity(Metric):
    """Shared constructor and settings of the native FR metrics."""

    kind: ClassVar = "FR"
    backend: ClassVar[str] = "native"
    licence: ClassVar[str] = "Apache-2.0"
    colour: ClassVar[str] = "rgb"

    def __init__(self, crop_border: int = 0) -> None:
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border = crop_border

    def settings(self) -> dict[str, Any]:
        return {
            "colour": self.colour,
            "crop_border": self.crop_border,
            "data_range": DATA_RANGE,
            "policy": "native",
        }

    def _prepare(self, pred: np.ndarray, ref: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Border-cropped pair in the metric's colour space (Y computed once per image object, shared)."""
        if ref is None:
            raise ImageError(f"{self.name} is a full-reference metric and needs a reference image")
        check_same_size(pred, ref)
        if self.colour == "y":
            shared = memo.current()
            return tuple(  # type: ignore[return-value]
                shared.get(
                    (image,),
                    ("y", self.crop_border),
                    lambda image=image: rgb_to_y(crop_border(image, self.crop_border)),
                )
                for image in (pred, ref)
            )
        return crop_border(pred, self.crop_border), crop_border(ref, self.crop_border)

    def _ssim_pass(self, pred: np.ndarray, ref: np.ndarray | None) -> SsimStatistics:
        """The full-resolution SSIM pass of the pair, shared by ``ssim`` and ``ms-ssim`` (same colour and crop)."""
        if ref is None:
            raise ImageError(f"{self.name} is a full-reference metric and needs a reference image")
        check_same_size(pred, ref)
        key = ("ssim-pass", self.colour, self.crop_border)
        return memo.current().get((pred, ref), key, lambda: _ssim_statistics(*self._prepare(pred, ref), DATA_RANGE))


class PSNR(_Fidelity):
    """PSNR on RGB (dB)."""

    name: ClassVar[str] = "psnr"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 1
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    higher_is_better: ClassVar[bool] = True

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        return {self.name: psnr(*self._prepare(pred, ref))}


class PSNRY(PSNR):
    """PSNR on BT.601 Y (MATLAB ``rgb2ycbcr``), dB."""

    name: ClassVar[str] = "psnr-y"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 3
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    colour: ClassVar[str] = "y"


class SSIM(_Fidelity):
    """SSIM on RGB (mean of the channels)."""

    name: ClassVar[str] = "ssim"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 2
    score_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    higher_is_better: ClassVar[bool] = True

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "window": "gaussian 11x11 sigma 1.5", "k1": SSIM_K1, "k2": SSIM_K2}

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        return {self.name: float(np.mean(self._ssim_pass(pred, ref).ssim))}


class SSIMY(SSIM):
    """SSIM on BT.601 Y (MATLAB ``rgb2ycbcr``)."""

    name: ClassVar[str] = "ssim-y"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 4
    score_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    colour: ClassVar[str] = "y"


MATLAB_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)
"""MATLAB ``rgb2gray``: the first row of the inverse of the NTSC (YIQ) matrix."""


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of ``uint8`` RGB: the weighted sum in double, rounded half away from zero to 8 bits,
    as ``float64`` ``H x W``."""
    weighted = sum(image[:, :, channel] * weight for channel, weight in enumerate(MATLAB_GRAY_WEIGHTS))
    return np.floor(weighted + 0.5)  # non-negative: half away from zero


def matlab_downsample(image: np.ndarray) -> np.ndarray:
    """The automatic downsampling of the authors' ``ssim.m``: ``f = max(1, round(min(H, W) / 256))``; an f x f
    mean filter (``imfilter(., ones(f) / f^2, 'symmetric', 'same')``) sampled at ``1:f:end``."""
    factor = max(1, math.floor(min(image.shape[:2]) / 256 + 0.5))  # MATLAB round: half away from zero
    if factor == 1:
        return image
    before = (factor - 1) // 2  # MATLAB's 'same' anchor of an even kernel lies left of centre
    padded = np.pad(image, ((before, factor), (before, factor)), mode="symmetric")
    rows, columns = -(-image.shape[0] // factor), -(-image.shape[1] // factor)
    total = np.zeros((rows, columns))
    for dy in range(factor):
        for dx in range(factor):
            total += padded[dy : dy + rows * factor : factor, dx : dx + columns * factor : factor]
    return total / (factor * factor)


class SSIMOfficial(_Fidelity):
    """SSIM as the authors' MATLAB ``ssim.m`` on ``rgb2gray`` input, without its automatic downsampling: the
    values pyiqa publishes as the official ones (``ResultsCalibra``: "we remove such constraint")."""

    name: ClassVar[str] = "ssim-official"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = None
    score_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    higher_is_better: ClassVar[bool] = True
    colour: ClassVar[str] = "gray"
    downsample: ClassVar[bool] = False

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "colour": "MATLAB rgb2gray, rounded to 8 bits",
            "window": "gaussian 11x11 sigma 1.5",
            "k1": SSIM_K1,
            "k2": SSIM_K2,
            "region": "valid (5 px from each edge)",
            "downsample": "max(1, round(min(H, W) / 256)) mean filter + subsample" if self.downsample else "none",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        if ref is None:
            raise ImageError(f"{self.name} is a full-reference metric and needs a reference image")
        check_same_size(pred, ref)
        pair = [rgb_to_gray(crop_border(image, self.crop_border)) for image in (pred, ref)]
        if self.downsample:
            pair = [matlab_downsample(image) for image in pair]
        return {self.name: float(_ssim_statistics(pair[0], pair[1], DATA_RANGE).ssim[0])}


class SSIMMatlab(SSIMOfficial):
    """SSIM exactly as the authors' MATLAB ``ssim.m`` runs by default on ``rgb2gray`` input, with its automatic
    downsampling (the convention of IQA-database studies; at 4K it scores an 8x smaller image)."""

    name: ClassVar[str] = "ssim-matlab"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = None
    score_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    downsample: ClassVar[bool] = True


class MSSSIM(_Fidelity):
    """Five-scale MS-SSIM on RGB."""

    name: ClassVar[str] = "ms-ssim"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 5
    score_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    higher_is_better: ClassVar[bool] = True

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "weights": list(MS_SSIM_WEIGHTS), "pooling": "2x2 mean, zero pad on odd"}

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        prepared = self._prepare(pred, ref)
        _check_ms_ssim_size(prepared[0])
        return {self.name: _ms_ssim(*prepared, DATA_RANGE, first=self._ssim_pass(pred, ref))}
