"""Native NIQE (Mittal et al., 2013) with numpy, scipy and OpenCV: the computation of pyiqa's ``NIQE`` without torch.

The steps and their conventions are pyiqa 0.1.16's (``pyiqa/archs/niqe_arch.py``), which follow the authors'
MATLAB release through BasicSR:

1. **Grey.** ``yiq``: ``Y = 0.299 R + 0.587 G + 0.114 B`` (the Y of YIQ, equal to MATLAB's ``rgb2gray`` up to its
   rounding of the weights; pyiqa's default). ``ycbcr``: BT.601 ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``
   (MATLAB's ``rgb2ycbcr``; BasicSR's NIQE). Either is rounded to integers in ``[0, 255]``, as pyiqa does.
2. The image is cropped to whole 96x96 blocks from the top-left.
3. **Two scales.** At scale 1 and again after MATLAB's bicubic ``imresize(., 0.5)`` with antialiasing
   (8 taps, half-sample symmetric border), the image is normalised,
   ``(I - mu) / (sigma + 1)`` with ``mu``, ``sigma`` the local mean and standard deviation under a 7x7 Gaussian
   window (sigma 7/6, replicated border), and cut into blocks (96 px, then 48 px).
4. **Features.** Per block, an asymmetric generalised Gaussian (AGGD) is fitted by moment matching on a grid of
   shapes 0.2:0.001:10 to the normalised block and to its products with the block circularly shifted by one
   pixel horizontally, vertically and along both diagonals: 18 numbers per scale, 36 per block.
5. **Score.** With ``mu_d``, ``C_d`` the mean and covariance of the block features (blocks with NaN features
   dropped, as pyiqa's ``nanmean``/``nancov``) and ``mu_p``, ``C_p`` the pristine model:
   ``sqrt((mu_p - mu_d) pinv((C_p + C_d) / 2) (mu_p - mu_d)^T)``.

Block statistics are computed strip by strip (one row of blocks at a time) in float64, so the temporaries stay
small; the Gaussian window runs as a separable OpenCV filter whose 1-D taps are scaled so that the 2-D window sums
to exactly what pyiqa's float32-rounded window sums to (this keeps the tiny bias of flat regions identical).
An image with fewer than two textured blocks (flat) has no defined NIQE and is refused with one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammaln

from op4ksr_bench.errors import ImageError
from op4ksr_bench.metrics.base import Metric
from op4ksr_bench.weights import WeightFile
from op4ksr_bench.weights.fetchers import BASICSR_VERSION, NIQE_MEMBER, fetch_niqe

NIQE_PARAMETERS = WeightFile(
    name="niqe-pris-params",
    filename="niqe_modelparameters.mat",
    root="pyiqa",
    sha256="b6ba79ec4c0558d205c4277d411e896ac69398a89f3d07422445a20eaeb3af7a",
    size=10928,
    licence="Apache-2.0 (BasicSR); NIQE pristine model of Mittal et al.",
    source=f"PyPI sdist basicsr=={BASICSR_VERSION}, member {NIQE_MEMBER} (converted)",
    fetcher=fetch_niqe,
)
"""The pristine NIQE model (``mu_prisparam``, ``cov_prisparam``) in pyiqa's file; also used by ``niqe-pyiqa``."""

BLOCK = 96
"""Block size at scale 1 (the authors' recommended value); 48 px at scale 2."""
WINDOW = 7
WINDOW_SIGMA = 7.0 / 6.0
COLOURS = ("yiq", "ycbcr")
YIQ_WEIGHTS = (0.299, 0.587, 0.114)
YCBCR_WEIGHTS = (65.481, 128.553, 24.966)
COLOUR_NAMES = {"yiq": "Y of YIQ (0.299 R + 0.587 G + 0.114 B), rounded", "ycbcr": "Y of YCbCr (BT.601), rounded"}

_SHAPES = np.arange(0.2, 10 + 0.001, 0.001)
"""The AGGD shape grid of pyiqa's ``estimate_aggd_param``."""


def _shape_ratios() -> np.ndarray:
    return np.exp(2 * gammaln(2.0 / _SHAPES) - (gammaln(1.0 / _SHAPES) + gammaln(3.0 / _SHAPES)))


_RATIOS = _shape_ratios()
"""``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` on the grid; increasing in ``a``."""


def load_parameters(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(mu [36], cov [36, 36])`` of the pristine model from pyiqa's ``niqe_modelparameters.mat``."""
    import scipy.io

    parameters = scipy.io.loadmat(str(path))
    mu = np.ravel(parameters["mu_prisparam"]).astype(np.float64)
    cov = np.asarray(parameters["cov_prisparam"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ImageError(f"{path}: NIQE parameters have shapes {mu.shape}, {cov.shape}; expected (36,), (36, 36)")
    return mu, cov


def _channel_tables(colour: str) -> np.ndarray:
    """``float32(float32(v) / 255) * float32(w_c)`` for every 8-bit ``v`` and channel ``c``: ``[256, 3]``."""
    weights = YIQ_WEIGHTS if colour == "yiq" else YCBCR_WEIGHTS
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return np.stack([levels * np.float32(weight) for weight in weights], axis=1)


def grey(image: np.ndarray, colour: str) -> np.ndarray:
    """Rounded luma of ``uint8`` ``H x W x 3`` RGB in the ``colour`` convention: ``uint8`` ``H x W``.

    Bit-identical to pyiqa's ``to_y_channel(x, 255, colour)`` on the float32 tensor ``x = RGB / 255``: the three
    weighted channels are float32 products (one table look-up each), summed in pyiqa's order, scaled back to
    ``[0, 255]`` and rounded half to even.
    """
    import cv2

    if colour not in COLOURS:
        raise ValueError(f"unknown NIQE colour convention {colour!r}; choose one of {', '.join(COLOURS)}")
    tables = _channel_tables(colour)
    red, green, blue = (cv2.LUT(image[:, :, channel], tables[:, channel]) for channel in range(3))
    luma = cv2.add(red, green, dst=red)
    luma = cv2.add(luma, blue, dst=luma)
    scale = np.float32(255.0)
    if colour == "ycbcr":
        np.add(luma, np.float32(16.0), out=luma)
        np.divide(luma, scale, out=luma)
    np.multiply(luma, scale, out=luma)
    return np.rint(luma, out=luma).astype(np.uint8)


def _window() -> np.ndarray:
    """1-D taps of MATLAB's ``fspecial('gaussian', 7, 7/6)``, scaled so that their 2-D product sums to what pyiqa's
    float32-rounded 2-D window sums to."""
    radius = (WINDOW - 1) / 2
    offsets = np.arange(-radius, radius + 1)
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * WINDOW_SIGMA**2))
    window /= window.sum()
    total = float(window.astype(np.float32).astype(np.float64).sum())
    taps = np.exp(-(offsets**2) / (2 * WINDOW_SIGMA**2))
    taps /= taps.sum()
    return taps * math.sqrt(total)


_TAPS = _window()
_HALO = WINDOW // 2
_EPS = float(np.finfo(np.float64).eps)


def normalise(image: np.ndarray) -> np.ndarray:
    """``(I - mu) / (sigma + 1)`` of a float64 image under the 7x7 Gaussian window (replicated border).

    ``sigma = sqrt(|E[I^2] - mu^2| + eps)``, as pyiqa's ``normalize_img_with_gauss``.
    """
    import cv2

    padded = cv2.copyMakeBorder(image, _HALO, _HALO, _HALO, _HALO, cv2.BORDER_REPLICATE)
    return _normalise_window(padded)


def _normalise_window(padded: np.ndarray) -> np.ndarray:
    """:func:`normalise` of the interior of an image padded by ``_HALO`` px on every side."""
    import cv2

    inner = (slice(_HALO, -_HALO), slice(_HALO, -_HALO))
    mean = cv2.sepFilter2D(padded, cv2.CV_64F, _TAPS, _TAPS)[inner]
    squares = cv2.sepFilter2D(cv2.multiply(padded, padded), cv2.CV_64F, _TAPS, _TAPS)[inner]
    squares = cv2.subtract(squares, cv2.multiply(mean, mean))
    squares = np.abs(squares, out=squares)
    squares = cv2.sqrt(cv2.add(squares, _EPS, dst=squares), dst=squares)
    squares = cv2.add(squares, 1.0, dst=squares)
    centred = cv2.subtract(padded[inner], mean, dst=mean)
    return cv2.divide(centred, squares, dst=centred)


def half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` (bicubic, antialiased) of an even-sized image, in float32 and in the order
    pyiqa's ``imresize`` runs it (it casts to float32; rows first, taps summed in order); returned as float64."""
    import cv2

    taps = _cubic((np.arange(8, dtype=np.float32) - np.float32(3.5)) * np.float32(0.5)).astype(np.float32)
    taps /= taps.sum(dtype=np.float32)

    def rows(source: np.ndarray) -> np.ndarray:
        # output i reads inputs 2i-3 .. 2i+4, i.e. padded rows 2i+1 .. 2i+8 (half-sample symmetric border)
        padded = cv2.copyMakeBorder(source, 4, 4, 0, 0, cv2.BORDER_REFLECT)
        count = source.shape[0] // 2
        total = np.zeros((count, source.shape[1]), dtype=np.float32)
        for tap in range(8):
            total += taps[tap] * padded[tap + 1 : tap + 1 + 2 * count : 2]
        return total

    vertical = rows(image.astype(np.float32))
    return np.ascontiguousarray(rows(np.ascontiguousarray(vertical.T)).T).astype(np.float64)


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    magnitude = np.abs(x)
    inner = ((a + 2) * magnitude - (a + 3)) * magnitude**2 + 1
    outer = ((a * magnitude - 5 * a) * magnitude + 8 * a) * magnitude - 4 * a
    return np.where(magnitude <= 1, inner, np.where(magnitude <= 2, outer, 0.0))


def _aggd(sums: np.ndarray, count: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyiqa's ``estimate_aggd_param`` from block sums ``[..., 5]`` (negative count, positive count, negative
    squares, positive squares, sum of absolute values): ``(alpha, beta_left, beta_right)``."""
    negative_count, positive_count, negative_squares, positive_squares, absolute = np.moveaxis(sums, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.sqrt(negative_squares / negative_count)
        right = np.sqrt(positive_squares / positive_count)
        gamma = left / right
        ratio = (absolute / count) ** 2 / ((negative_squares + positive_squares) / count)
        normalised = ratio * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    # argmin |ratio(a) - normalised| over the increasing grid: the nearer of the two neighbours (first on ties)
    upper = np.clip(np.searchsorted(_RATIOS, normalised), 1, len(_RATIOS) - 1)
    lower = upper - 1
    index = np.where(np.abs(_RATIOS[lower] - normalised) <= np.abs(_RATIOS[upper] - normalised), lower, upper)
    index = np.where(np.isnan(normalised), 0, index)  # argmin of an all-NaN row is its first entry
    alpha = _SHAPES[index]
    factor = np.sqrt(np.exp(gammaln(1 / alpha) - gammaln(3 / alpha)))
    return alpha, left * factor, right * factor


def _sums(signal: np.ndarray, out: np.ndarray) -> None:
    """Per-row sums of a ``[rows, n]`` signal into ``out [rows, 5]``: counts and squares by sign, sum of |x|."""
    positive = np.maximum(signal, 0.0)
    total_squares = np.einsum("ij,ij->i", signal, signal)
    positive_squares = np.einsum("ij,ij->i", positive, positive)
    nonzero, positive_count = np.count_nonzero(signal, axis=1), np.count_nonzero(positive, axis=1)
    out[:, 0] = nonzero - positive_count
    out[:, 1] = positive_count
    out[:, 2] = total_squares - positive_squares
    out[:, 3] = positive_squares
    out[:, 4] = 2 * positive.sum(axis=1) - signal.sum(axis=1)  # sum |x| = sum max(x, 0) - sum min(x, 0)


SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
"""pyiqa's circular in-block shifts (rows, columns) for the pairwise products."""


def scale_features(image: np.ndarray, block: int) -> np.ndarray:
    """The 18 NIQE features of every ``block x block`` block of a float64 image (a whole number of blocks per
    side), normalised strip by strip: ``[blocks, 18]``, blocks ordered column by column (pyiqa's ``blockproc``)."""
    import cv2

    rows, columns = image.shape[0] // block, image.shape[1] // block
    sums = np.empty((rows, columns, 5, 5))  # [row, column, signal, statistic]
    for row in range(rows):
        top, bottom = row * block - _HALO, (row + 1) * block + _HALO
        window = image[max(top, 0) : min(bottom, image.shape[0])]
        padded = cv2.copyMakeBorder(
            window, max(-top, 0), max(bottom - image.shape[0], 0), _HALO, _HALO, cv2.BORDER_REPLICATE
        )
        strip = _normalise_window(padded)
        blocks = strip.reshape(block, columns, block).transpose(1, 0, 2)  # [columns, y, x]
        blocks = np.ascontiguousarray(blocks)
        _sums(blocks.reshape(columns, -1), sums[row, :, 0])
        for index, shift in enumerate(SHIFTS, start=1):
            product = blocks * np.roll(blocks, shift, axis=(1, 2))
            _sums(product.reshape(columns, -1), sums[row, :, index])
    alpha, left, right = _aggd(sums.transpose(1, 0, 2, 3).reshape(rows * columns, 5, 5), float(block * block))
    features = [alpha[:, 0], (left[:, 0] + right[:, 0]) / 2]
    for index in range(1, 5):
        shape = alpha[:, index]
        mean = (right[:, index] - left[:, index]) * np.exp(gammaln(2 / shape) - gammaln(1 / shape))
        features += [shape, mean, left[:, index], right[:, index]]
    return np.stack(features, axis=1)


def niqe(luma: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> float:
    """NIQE of a rounded luma image (``H x W``, values in ``[0, 255]``) against the pristine model ``(mu, cov)``."""
    height, width = luma.shape
    if height < BLOCK or width < BLOCK:
        raise ImageError(f"niqe needs at least {BLOCK}x{BLOCK} px, got {width}x{height}")
    rows, columns = height // BLOCK, width // BLOCK
    image = luma[: rows * BLOCK, : columns * BLOCK].astype(np.float64)
    first = scale_features(image, BLOCK)
    image /= 255.0
    second = scale_features(half(image) * 255.0, BLOCK // 2)
    features = np.concatenate([first, second], axis=1)
    finite = ~np.isnan(features)
    complete = features[finite.all(axis=1)]
    if len(complete) < 2:
        raise ImageError(
            f"niqe is undefined on this {width}x{height} image: fewer than two {BLOCK}x{BLOCK} blocks have texture "
            "(a flat or nearly flat image)"
        )
    mean = np.where(finite, features, 0.0).sum(axis=0) / finite.sum(axis=0)
    covariance = np.cov(complete, rowvar=False)
    difference = (mu - mean)[None]
    inverse = np.linalg.pinv((cov + covariance) / 2)
    return float(np.sqrt((difference @ inverse @ difference.T).item()))


# ------------------------------------------------------------------------------------------------------- classes


class NIQE(Metric):
    """NIQE (NR, lower is better), native; the grey convention is the class's ``colour``.

    ``niqe`` uses ``yiq`` (pyiqa's default, the luma of the authors' MATLAB release, which converts with
    ``rgb2gray``): the convention of the official TID2013 values and of SR papers that score with pyiqa.
    ``niqe-ycbcr`` uses BasicSR's BT.601 Y of YCbCr.
    """

    name: ClassVar[str] = "niqe"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 10
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = False
    licence: ClassVar[str] = (
        "Apache-2.0 (this project's implementation of Mittal et al.'s NIQE, BasicSR's conventions); "
        "parameters Apache-2.0 (BasicSR)"
    )
    weights: ClassVar[tuple[str, ...]] = ("niqe-pris-params",)
    colour: ClassVar[str] = "yiq"

    def __init__(self) -> None:
        from op4ksr_bench import weights

        self.mu, self.cov = load_parameters(weights.require("niqe-pris-params"))

    def settings(self) -> dict[str, Any]:
        return {
            "colour": COLOUR_NAMES[self.colour],
            "block": BLOCK,
            "scales": "1 and MATLAB imresize 0.5 (bicubic, antialiased)",
            "implementation": "native (numpy/scipy/OpenCV), equal to pyiqa 0.1.16 NIQE",
            "crop_border": 0,
            "policy": "native",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        from op4ksr_bench.imageio import check_rgb8

        check_rgb8(pred, "image")
        return {self.name: niqe(grey(pred, self.colour), self.mu, self.cov)}


class NIQEYCbCr(NIQE):
    """NIQE on BT.601 Y of YCbCr (BasicSR's convention), native."""

    name: ClassVar[str] = "niqe-ycbcr"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = None
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    colour: ClassVar[str] = "ycbcr"
