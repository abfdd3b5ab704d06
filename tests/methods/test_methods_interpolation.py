"""Bicubic and Lanczos against two independent implementations: Pillow (float mode) and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.interpolation import BicubicMethod, LanczosMethod, cubic_kernel, resample_coefficients


def _pillow(image: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    channels = [np.asarray(Image.fromarray(image[:, :, c], mode="F").resize(size, resample)) for c in range(3)]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def _run(method, image: np.ndarray) -> np.ndarray:
    return method.upscale(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("cls", "resample"), [(BicubicMethod, Image.BICUBIC), (LanczosMethod, Image.LANCZOS)])
def test_matches_pillow_float_resize(cls, resample, scale):
    image = np.random.default_rng(scale).random((11, 17, 3), dtype=np.float32)
    ours = _run(cls(scale=scale), image)
    reference = _pillow(image, (17 * scale, 11 * scale), resample)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-5


def test_a_minus_075_matches_torch_interpolate_away_from_borders():
    image = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    ours = BicubicMethod(scale=4, a=-0.75).upscale(image)
    reference = torch.nn.functional.interpolate(image, scale_factor=4, mode="bicubic", align_corners=False)
    interior = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # torch clamps at borders, Pillow renormalises
    assert (ours[interior] - reference.clamp(0, 1)[interior]).abs().max() < 1e-5


def test_weights_sum_to_one_and_output_is_clamped():
    _, weights = resample_coefficients(7, 28, cubic_kernel, 2.0)
    assert abs(weights.sum(axis=1) - 1.0).max() < 1e-12
    step = torch.zeros(1, 3, 8, 8)
    step[..., 4:] = 1.0
    out = BicubicMethod(scale=4).upscale(step)
    assert out.min() == 0.0 and out.max() == 1.0  # the cubic overshoot is clamped, not passed on


def test_constant_image_stays_constant():
    out = LanczosMethod(scale=4).upscale(torch.full((1, 3, 9, 5), 0.37))
    assert torch.allclose(out, torch.full_like(out, 0.37), atol=1e-6)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (BicubicMethod, {"a": 0.5}, "a=0.5"),
        (BicubicMethod, {"a": "x"}, "a='x'"),
        (LanczosMethod, {"lobes": 1}, "lobes=1"),
        (BicubicMethod, {"dtype": "bfloat16"}, "float32 only"),
        (BicubicMethod, {"scale": 5}, "supports scale"),
    ],
)
def test_bad_options_are_one_line_errors(cls, kwargs, message):
    with pytest.raises(UsageError, match=message):
        cls(**kwargs)
