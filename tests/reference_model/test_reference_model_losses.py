"""L_AP (through the benchmark's periodicity code) and the combined training loss."""

from __future__ import annotations

import math

import torch

from reference_model.losses import SuperResolutionLoss, ap_loss


def smooth_image(size: int = 128, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 16, size // 16, generator=generator, dtype=torch.float64)
    image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    noise = 0.02 * torch.randn(1, 3, size, size, generator=generator, dtype=torch.float64)
    return (image + noise).clamp(0, 1).to(dtype)


def token_grid(size: int, period: int = 32, dtype=torch.float32) -> torch.Tensor:
    """A seam at every ``period`` px along both axes (what a token-pitch artifact looks like)."""
    line = torch.zeros(size, dtype=torch.float64)
    line[::period] = 1.0
    grid = torch.maximum(line[:, None], line[None, :])
    return grid.expand(1, 3, size, size).to(dtype)


def test_ap_loss_is_zero_without_an_injected_period():
    target = smooth_image()
    assert float(ap_loss(target.clone(), target)) == 0.0
    noisy = (target + 0.02 * torch.randn(target.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    assert float(ap_loss(noisy, target)) < 0.01


def test_ap_loss_is_positive_for_a_period_at_the_token_pitch():
    target = smooth_image()
    artifacted = (target + 0.15 * token_grid(128, 32)).clamp(0, 1)
    value = float(ap_loss(artifacted, target, periods=(16, 32)))
    assert value > 0.05
    # a target that has the same lattice itself is not penalised for it
    assert float(ap_loss(artifacted, artifacted)) == 0.0


def test_ap_loss_gradients_by_gradcheck():
    # 48 px is the smallest multiple of 16 that fits one lattice multiple of 16 px; fast mode checks random
    # projections of the Jacobian (the full numerical Jacobian would need 2 x 6,912 loss evaluations)
    target = smooth_image(48, dtype=torch.float64)
    prediction = (target + 0.2 * token_grid(48, 16, torch.float64)).requires_grad_(True)
    assert float(ap_loss(prediction, target, periods=(16,))) > 0  # away from the relu kink
    assert torch.autograd.gradcheck(
        lambda x: ap_loss(x, target, periods=(16,)), (prediction,), eps=1e-6, atol=1e-6, fast_mode=True
    )


def test_combined_loss_weights_and_parts():
    target = smooth_image()
    prediction = (target + 0.15 * token_grid(128)).clamp(0, 1).requires_grad_(True)
    criterion = SuperResolutionLoss(l2_weight=1.0, lpips_weight=0.0, ap_weight=0.5, ap_periods=(16, 32))
    total, parts = criterion(prediction, target)
    mse = float(torch.mean((prediction - target) ** 2))
    assert math.isclose(parts["l2"], mse, rel_tol=1e-6)
    assert math.isclose(float(total), parts["l2"] + 0.5 * parts["ap"], rel_tol=1e-5)
    total.backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()


def test_lpips_term_is_dropped_when_its_weights_are_missing():
    criterion = SuperResolutionLoss(lpips_weight=1.0)  # TORCH_HOME is an empty temporary folder in tests
    assert not criterion.lpips_active
    _, parts = criterion(smooth_image(), smooth_image(seed=1))
    assert "lpips" not in parts


def test_flat_and_constant_images_give_finite_zero_periodicity():
    """A constant crop (the train suite has flat ones) gives PAS 0 and a finite L_AP with finite gradients."""
    from op4ksr_bench.metrics.periodicity import FLAT_ENERGY, autocorrelation, pas

    assert FLAT_ENERGY == 1e-10
    constant = torch.full((1, 3, 96, 96), 0.37)
    report = pas(constant, (16, 32))
    assert report.value == 0.0 and report.per_period == {16: 0.0, 32: 0.0}
    assert torch.isfinite(autocorrelation(torch.zeros(1, 1, 32, 32))).all()
    for prediction in (
        constant.clone(),
        constant + 0.05 * torch.rand(constant.shape, generator=torch.Generator().manual_seed(0)),
    ):
        prediction.requires_grad_(True)
        loss = ap_loss(prediction, constant, (16, 32))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(prediction.grad).all()
    textured = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    assert pas(textured, (16, 32)).value != 0.0  # the guard leaves textured images alone
