"""Native metrics against scikit-image, pyiqa, Diffusion-4K's evaluation loop or the published formula.

Tolerances (docs/metrics/calibration.md): PSNR 1e-6 dB, SSIM 1e-4 (measured ~1e-6), MS-SSIM 1e-5, GLCM 1e-12,
compression ratio exact, PAS 1e-4, seam 1e-12.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as photos
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from op4ksr_bench.metrics import artifacts, fidelity, periodicity, texture

pytestmark = pytest.mark.calibration

SKIMAGE_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}


def noisy(reference: np.ndarray, amplitude: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-amplitude, amplitude + 1, reference.shape)
    return np.clip(reference.astype(np.int32) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    reference = photos.astronaut()[:300, :410]
    return noisy(reference, 25, seed=1), reference


@pytest.mark.parametrize("border", [0, 4])
def test_psnr_and_ssim_match_scikit_image(pair, border):
    pred, ref = pair
    values = {}
    for name, metric_class in (
        ("psnr", fidelity.PSNR),
        ("ssim", fidelity.SSIM),
        ("psnr-y", fidelity.PSNRY),
        ("ssim-y", fidelity.SSIMY),
    ):
        values[name] = metric_class(crop_border=border)(pred, ref)[name]
    cut = (slice(border, pred.shape[0] - border), slice(border, pred.shape[1] - border))
    pred_c, ref_c = pred[cut], ref[cut]
    assert values["psnr"] == pytest.approx(peak_signal_noise_ratio(ref_c, pred_c, data_range=255), abs=1e-6)
    assert values["ssim"] == pytest.approx(
        structural_similarity(ref_c, pred_c, channel_axis=2, **SKIMAGE_SSIM), abs=1e-4
    )
    y_pred, y_ref = rgb2ycbcr(pred_c)[..., 0], rgb2ycbcr(ref_c)[..., 0]
    assert values["psnr-y"] == pytest.approx(peak_signal_noise_ratio(y_ref, y_pred, data_range=255), abs=1e-6)
    assert values["ssim-y"] == pytest.approx(structural_similarity(y_ref, y_pred, **SKIMAGE_SSIM), abs=1e-4)


def test_psnr_of_identical_images_is_infinite(pair):
    assert math.isinf(fidelity.PSNR()(pair[1], pair[1])["psnr"])
    assert fidelity.SSIM()(pair[1], pair[1])["ssim"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(256, 256), (301, 455)])
def test_ms_ssim_matches_pyiqa(shape):
    from pyiqa.archs.ssim_arch import ms_ssim as pyiqa_ms_ssim

    reference = photos.astronaut()[: shape[0], : shape[1]]
    pred = noisy(reference, 30, seed=2)

    def tensor(array):
        return torch.from_numpy(array.astype(np.float64) / 255).permute(2, 0, 1)[None]

    expected = pyiqa_ms_ssim(tensor(pred), tensor(reference), data_range=1.0, test_y_channel=False).item()
    assert fidelity.MSSSIM()(pred, reference)["ms-ssim"] == pytest.approx(expected, abs=1e-5)


def diffusion4k_glcm(image: np.ndarray) -> float:
    """Diffusion-4K's evaluation loop (eval.py): OpenCV grey // 4, per-patch graycomatrix + shannon_entropy."""
    import cv2
    from skimage.feature import graycomatrix
    from skimage.measure import shannon_entropy

    grey = cv2.cvtColor(image[:, :, ::-1].copy(), cv2.COLOR_BGR2GRAY)
    grey64 = cv2.LUT(grey, np.array([level // 4 for level in range(256)], dtype=np.uint8))
    scores = []
    for row in range(grey.shape[0] // 64):
        for col in range(grey.shape[1] // 64):
            patch = grey64[row * 64 : row * 64 + 64, col * 64 : col * 64 + 64]
            matrix = graycomatrix(patch, [1, 2, 3, 4], [0, np.pi / 4, np.pi / 2, np.pi * 3 / 4], levels=64, normed=True)
            scores.append(shannon_entropy(matrix))
    return float(np.mean(scores))


@pytest.mark.parametrize("kind", ["photo", "flat", "noise"])
def test_glcm_matches_diffusion4k_loop(kind):
    if kind == "photo":
        image = photos.coffee()[:192, :256]
    elif kind == "flat":
        image = np.full((128, 192, 3), 90, dtype=np.uint8)
    else:
        image = np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert texture.GLCMScore()(image)["glcm"] == pytest.approx(diffusion4k_glcm(image), abs=1e-12)


def test_compression_ratio_is_raw_over_pillow_jpeg95():
    image = photos.chelsea()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95, subsampling=2, optimize=False)
    assert texture.CompressionRatio()(image)["compression-ratio"] == image.size / len(buffer.getvalue())


def reference_pas(image: np.ndarray, period: int, multiples: int) -> float:
    """PAS_P from the published formula with float64 numpy: spatial Gaussian high-pass and direct lag sums."""
    from scipy.ndimage import convolve

    luma = image.astype(np.float64) / 255 @ np.array(periodicity.LUMA_WEIGHTS)
    height, width = luma.shape
    ramp = periodicity.effective_ramp(height, width)

    def taper(length):
        window = np.ones(length)
        position = (np.arange(ramp) + 0.5) / ramp
        window[:ramp] = 0.5 * (1 - np.cos(np.pi * position))
        window[length - ramp :] = window[:ramp][::-1]
        return window

    window = taper(height)[:, None] * taper(width)[None, :]
    tapered = (luma - luma.mean()) * window
    sigma = periodicity.DEFAULT_HIGHPASS_SIGMA
    radius = int(6 * sigma)
    offsets = np.arange(-radius, radius + 1)
    kernel_1d = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel_1d /= kernel_1d.sum()
    margin = radius + 2
    padded = np.pad(tapered, margin)  # zero outside the frame, as the definition says
    highpassed = padded - convolve(padded, np.outer(kernel_1d, kernel_1d), mode="constant")

    def correlation(dy, dx):
        a = highpassed[max(0, -dy) : highpassed.shape[0] - max(0, dy), max(0, -dx) : highpassed.shape[1] - max(0, dx)]
        b = highpassed[max(0, dy) : highpassed.shape[0] - max(0, -dy), max(0, dx) : highpassed.shape[1] - max(0, -dx)]
        wa = window[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
        wb = window[max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)]
        return (a * b).sum() / (wa * wb).sum()

    zero = correlation(0, 0)
    inner, outer = periodicity.BACKGROUND_RADII
    ring = [
        (oy, ox)
        for oy in range(-outer, outer + 1)
        for ox in range(-outer, outer + 1)
        if inner <= max(abs(oy), abs(ox)) <= outer
    ]
    prominences = []
    for step_y, step_x in periodicity.DIRECTIONS:
        for k in range(1, multiples + 1):
            dy, dx = step_y * k * period, step_x * k * period
            background = np.mean([correlation(dy + oy, dx + ox) for oy, ox in ring])
            prominences.append((correlation(dy, dx) - background) / zero)
    return float(np.mean(prominences))


def test_pas_matches_the_published_formula():
    image = photos.brick()[:160, :160]
    image = np.repeat(image[:, :, None], 3, axis=2)
    tile = np.random.default_rng(0).integers(-12, 13, (16, 16))
    image = np.clip(image.astype(np.int32) + np.tile(tile, (10, 10))[:, :, None], 0, 255).astype(np.uint8)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255
    ours = periodicity.lattice_prominence(tensor, (8, 16), multiples=2)[0]
    for index, period in enumerate((8, 16)):
        assert ours[index].item() == pytest.approx(reference_pas(image, period, multiples=2), abs=1e-4)


def test_seam_matches_the_formula():
    import cv2

    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    stride = 16
    boundary = control = 0.0
    for plane in (grey, grey.T):  # columns, then rows
        lines = plane.shape[1]

        def energy(x, plane=plane):
            return np.abs(plane[:, x] - plane[:, x - 1]).sum()

        for b in range(stride, lines, stride):
            controls = [b + j * 24 for j in (-2, -1, 1, 2) if 1 <= b + j * 24 < lines and (b + j * 24) % stride]
            if controls:
                boundary += energy(b)
                control += np.mean([energy(c) for c in controls])
    expected = boundary / control - 1
    assert artifacts.Seam(tile_stride=stride)(image)["seam"] == pytest.approx(expected, abs=1e-12)
