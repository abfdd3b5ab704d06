"""RFR: the rotary frequencies change exactly as configured, through diffusers' Flux position embedding."""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxTransformer2DModel
from diffusers.models.transformers.transformer_flux import FluxPosEmbed

from reference_model.configs import load_config_file
from reference_model.model import OP4KSR, ModelConfig
from reference_model.rope import RescaledFluxPosEmbed, apply_rfr, axis_frequencies, rescaled_thetas

AXES = [16, 56, 56]


def expected(theta: float, dim: int) -> torch.Tensor:
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def test_unscaled_module_is_bit_identical_to_diffusers():
    ids = torch.stack([torch.zeros(50), torch.arange(50.0), torch.arange(50.0).flip(0)], dim=1)
    stock_cos, stock_sin = FluxPosEmbed(theta=10000, axes_dim=AXES)(ids)
    ours_cos, ours_sin = RescaledFluxPosEmbed(rescaled_thetas(10000, AXES, "none", 7.0), AXES)(ids)
    assert torch.equal(stock_cos, ours_cos) and torch.equal(stock_sin, ours_sin)


@pytest.mark.parametrize("scale", [2.0, 4.0, 16.0])
def test_base_mode_multiplies_theta_on_every_axis(scale):
    module = RescaledFluxPosEmbed(rescaled_thetas(10000, AXES, "base", scale), AXES)
    for dim, measured in zip(AXES, axis_frequencies(module), strict=True):
        torch.testing.assert_close(measured, expected(10000 * scale, dim), rtol=1e-6, atol=1e-7)
    # and it equals diffusers' own module built with theta * s
    ids = torch.stack([torch.zeros(40), torch.arange(40.0), torch.arange(40.0)], dim=1)
    stock = FluxPosEmbed(theta=10000 * scale, axes_dim=AXES)(ids)
    ours = module(ids)
    assert torch.equal(stock[0], ours[0]) and torch.equal(stock[1], ours[1])


@pytest.mark.parametrize("scale", [2.0, 4.0])
def test_ntk_mode_rescales_each_axis_by_its_own_exponent(scale):
    thetas = rescaled_thetas(10000, AXES, "ntk", scale)
    assert thetas == tuple(10000 * scale ** (d / (d - 2)) for d in AXES)
    module = RescaledFluxPosEmbed(thetas, AXES)
    base = RescaledFluxPosEmbed(rescaled_thetas(10000, AXES, "none", 1.0), AXES)
    for dim, measured, stock in zip(AXES, axis_frequencies(module), axis_frequencies(base), strict=True):
        torch.testing.assert_close(measured, expected(10000 * scale ** (dim / (dim - 2)), dim), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(measured[0], stock[0], rtol=0, atol=0)  # the highest frequency is untouched
        torch.testing.assert_close(measured[-1] * scale, stock[-1], rtol=1e-5, atol=0)  # the lowest divided by s


def test_bad_rfr_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown RFR mode"):
        rescaled_thetas(10000, AXES, "yarn", 2.0)
    with pytest.raises(ValueError, match="positive"):
        rescaled_thetas(10000, AXES, "base", 0.0)


def test_model_config_drives_the_transformer_rope():
    values = dict(load_config_file("nano")["model"], rfr_mode="base", rfr_scale=3.0)
    model = OP4KSR.from_config(ModelConfig.from_dict(values))
    axes = list(model.transformer.pos_embed.axes_dim)
    assert model.rope_thetas == (30000.0,) * len(axes)
    for dim, measured in zip(axes, axis_frequencies(model.transformer.pos_embed), strict=True):
        torch.testing.assert_close(measured, expected(30000.0, dim), rtol=1e-6, atol=1e-7)


def test_apply_rfr_changes_attention_output():
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        in_channels=8, num_layers=1, num_single_layers=0, attention_head_dim=16, num_attention_heads=1,
        joint_attention_dim=8, pooled_projection_dim=8, axes_dims_rope=(4, 6, 6),
    ).eval()  # fmt: skip
    ids = torch.stack([torch.zeros(16), torch.arange(16.0) // 4, torch.arange(16.0) % 4], dim=1)
    inputs = dict(
        hidden_states=torch.randn(1, 16, 8), encoder_hidden_states=torch.randn(1, 2, 8),
        pooled_projections=torch.randn(1, 8), timestep=torch.ones(1) * 0.5, img_ids=ids, txt_ids=torch.zeros(2, 3),
        return_dict=False,
    )  # fmt: skip
    with torch.no_grad():
        stock = transformer(**inputs)[0]
        apply_rfr(transformer, "none", 1.0)
        assert torch.equal(transformer(**inputs)[0], stock)
        apply_rfr(transformer, "ntk", 8.0)
        assert not torch.allclose(transformer(**inputs)[0], stock)


@pytest.mark.parametrize("scale", [2.0, 8.0])
def test_position_interpolation_divides_every_frequency_by_s(scale):
    assert rescaled_thetas(10000, AXES, "pi", scale) == (10000.0,) * len(AXES)  # the base is kept
    transformer = FluxTransformer2DModel(
        in_channels=8, num_layers=1, num_single_layers=0, attention_head_dim=128, num_attention_heads=1,
        joint_attention_dim=8, pooled_projection_dim=8, axes_dims_rope=tuple(AXES),
    )  # fmt: skip
    apply_rfr(transformer, "pi", scale)
    stock = RescaledFluxPosEmbed(rescaled_thetas(10000, AXES, "none", 1.0), AXES)
    for measured, reference in zip(axis_frequencies(transformer.pos_embed), axis_frequencies(stock), strict=True):
        torch.testing.assert_close(measured * scale, reference, rtol=1e-5, atol=1e-9)  # the highest one too
    # position p under pi is stock position p / s
    ids = torch.stack([torch.zeros(8), torch.arange(8.0) * scale, torch.arange(8.0)], dim=1)
    plain = torch.stack([torch.zeros(8), torch.arange(8.0), torch.arange(8.0) / scale], dim=1)
    ours, theirs = transformer.pos_embed(ids), stock(plain)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])
