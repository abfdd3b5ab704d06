"""The periodicity code behind PAS, dPAS and the trainer's L_AP loss, on photographs and injected patterns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as photos

from op4ksr_bench.metrics import periodicity


def as_tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0).to(dtype) / 255.0


def pink_noise(size: int, seed: int) -> torch.Tensor:
    """A photo-like 1/f random field (power ~ 1/f^2), RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    frequency = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2)
    frequency[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = np.fft.fft2(rng.standard_normal((size, size))) / frequency
        field = np.real(np.fft.ifft2(spectrum))
        channels.append((field - field.min()) / (field.max() - field.min()))
    return torch.from_numpy(np.stack(channels)).unsqueeze(0).float()


def pattern(kind: str, period: int, size: int, seed: int = 0) -> torch.Tensor:
    """A zero-mean periodic pattern ``[size, size]`` with unit-ish amplitude."""
    if kind == "tile":  # one random texture tile repeated: what intra-token ambiguity produces
        tile = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (period, period))).float()
        return tile.repeat(size // period, size // period)
    if kind == "grid":  # bright lines every `period` px: seams of a tile grid
        grid = torch.zeros(size, size)
        grid[::period, :] = 1.0
        grid[:, ::period] = 1.0
        return grid - grid.mean()
    if kind == "sine":
        ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
        return torch.sin(2 * np.pi * xs / period) + torch.sin(2 * np.pi * ys / period)
    raise ValueError(kind)


@pytest.fixture(scope="module")
def coffee() -> torch.Tensor:
    return as_tensor(photos.coffee()[:384, :384])


@pytest.mark.parametrize("name", ["coffee", "chelsea", "grass", "gravel"])
def test_pas_is_near_zero_on_clean_photographs(name):
    report = periodicity.pas(as_tensor(getattr(photos, name)()))
    assert abs(report.value) < 0.01, report
    assert all(abs(score) < 0.01 for score in report.per_period.values()), report


def test_pas_is_near_zero_on_photo_like_noise():
    report = periodicity.pas(pink_noise(512, seed=3))
    assert abs(report.value) < 0.005, report


@pytest.mark.parametrize(("kind", "period"), [("tile", 8), ("tile", 16), ("tile", 32), ("grid", 16), ("sine", 8)])
def test_pas_rises_with_the_injected_amplitude_and_names_the_period(coffee, kind, period):
    injected = pattern(kind, period, coffee.shape[-1])
    values = []
    for amplitude in (0, 2, 4, 8, 16, 32):
        report = periodicity.pas((coffee + amplitude / 255.0 * injected).clamp(0, 1))
        values.append(report.value)
    assert all(later > earlier for earlier, later in zip(values, values[1:], strict=False)), values
    strong = periodicity.pas((coffee + 32 / 255.0 * injected).clamp(0, 1))
    assert strong.dominant_period == period, strong
    assert strong.value > 0.1


def test_pas_ignores_brightness_and_contrast(coffee):
    original = periodicity.lattice_prominence(coffee.double())
    for gain, offset in ((0.5, 0.2), (0.8, -0.05), (0.3, 0.6)):
        changed = periodicity.lattice_prominence(gain * coffee.double() + offset)
        torch.testing.assert_close(changed, original, atol=1e-9, rtol=0)
    eight_bit = (0.7 * coffee + 0.15).mul(255).round().div(255)  # what a saved image would hold
    assert torch.allclose(periodicity.lattice_prominence(eight_bit), original.float(), atol=2e-3)


def test_lattice_prominence_shape_and_batch_independence(coffee):
    other = pink_noise(384, seed=1)
    batch = torch.cat([coffee, other])
    scores = periodicity.lattice_prominence(batch, (8, 16, 32))
    assert scores.shape == (2, 3)
    torch.testing.assert_close(scores[1:], periodicity.lattice_prominence(other, (8, 16, 32)), atol=1e-5, rtol=0)


def test_lattice_prominence_gradcheck():
    image = torch.rand(1, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    image.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: periodicity.lattice_prominence(x, (8, 12), multiples=2, ramp=6),
        (image,),
        eps=1e-6,
        atol=1e-6,
        fast_mode=True,
    )


def test_periodicity_loss_penalises_only_excess_peaks(coffee):
    target = coffee.clone()
    assert periodicity.periodicity_loss(target, target).item() == 0.0
    prediction = (coffee + 16 / 255.0 * pattern("tile", 16, coffee.shape[-1])).clamp(0, 1).requires_grad_(True)
    loss = periodicity.periodicity_loss(prediction, target, (16, 32))
    assert loss.item() > 0.05
    loss.backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0
    # the target's own periodic texture is not penalised: the same pattern in both gives (almost) nothing
    textured = prediction.detach()
    assert periodicity.periodicity_loss(textured, textured).item() == 0.0


def test_autocorrelation_matches_a_direct_sum():
    rng = np.random.default_rng(5)
    signal = rng.standard_normal((24, 30))
    result = periodicity.autocorrelation(torch.from_numpy(signal)[None, None])[0, 0].numpy()
    height, width = signal.shape

    def direct(dy: int, dx: int) -> float:
        a = signal[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
        b = signal[max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)]
        return float((a * b).mean())

    zero = direct(0, 0)
    assert result[0, 0] == pytest.approx(1.0)
    for dy, dx in ((0, 1), (3, 0), (2, 5), (-4, 7), (5, -11), (-11, -14)):
        assert result[dy % height, dx % width] == pytest.approx(direct(dy, dx) / zero, abs=1e-12)


def test_fused_path_matches_the_public_building_blocks():
    image = as_tensor(photos.astronaut()[:256, :256], torch.float64)
    highpassed = periodicity.luminance_highpass(image, ramp=32)
    window = periodicity.taper_window(256, 32, dtype=torch.float64, device="cpu")
    correlation = periodicity.autocorrelation(highpassed, window=(window, window))[0, 0]
    inner, outer = periodicity.BACKGROUND_RADII
    ring = [
        (dy, dx)
        for dy in range(-outer, outer + 1)
        for dx in range(-outer, outer + 1)
        if inner <= max(abs(dy), abs(dx)) <= outer
    ]
    expected = []
    for dy, dx in ((0, 16), (0, 32), (16, 0), (32, 0), (16, 16), (32, 32)):
        background = np.mean([correlation[(dy + oy) % 256, (dx + ox) % 256].item() for oy, ox in ring])
        expected.append(correlation[dy % 256, dx % 256].item() - background)
    fused = periodicity.lattice_peaks(image, (16,), multiples=2)[0][0].numpy()
    np.testing.assert_allclose(fused, expected, atol=1e-4)


def test_dominant_period_prefers_the_fundamental():
    assert periodicity.dominant_period({8: 0.01, 16: 0.30, 32: 0.29, 64: 0.31}) == 16
    assert periodicity.dominant_period({8: -0.01, 16: -0.02}) == 8


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(ValueError, match="needs an image of at least"):
        periodicity.lattice_prominence(torch.rand(1, 3, 64, 64), (64,))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        periodicity.lattice_prominence(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="float"):
        periodicity.lattice_prominence(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        periodicity.periodicity_loss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32))
