"""Shapes, packing and geometry of the OP4KSR reference model at nano size."""

from __future__ import annotations

import pytest
import torch

from op4ksr_bench.errors import UsageError
from reference_model.configs import load_config_file
from reference_model.model import OP4KSR, ModelConfig, image_token_ids, pack_latents, unpack_latents


@pytest.fixture(scope="module")
def nano() -> OP4KSR:
    return OP4KSR.from_config(ModelConfig.from_dict(load_config_file("nano")["model"]), seed=0).eval()


@pytest.mark.parametrize("height,width", [(32, 32), (64, 96), (96, 64), (128, 32), (160, 224)])
def test_forward_gives_the_requested_size_in_one_pass(nano, height, width):
    lr = torch.rand(2, 3, height // 4, width // 4, generator=torch.Generator().manual_seed(0))
    output = nano.upscale(lr)
    assert output.shape == (2, 3, height, width)
    assert output.dtype == torch.float32
    assert 0.0 <= float(output.min()) and float(output.max()) <= 1.0


def test_explicit_output_size_and_token_count(nano):
    lr = torch.rand(1, 3, 16, 24)
    assert nano.upscale(lr, (96, 128)).shape == (1, 3, 96, 128)
    assert nano.pixels_per_token == 32  # F16 VAE (16 px per latent cell) x 2x2 packing


@pytest.mark.parametrize("height,width", [(48, 64), (64, 40), (0, 64)])
def test_sizes_off_the_token_pitch_raise_one_line(nano, height, width):
    with pytest.raises(UsageError, match="multiple of 32"):
        nano.upscale(torch.rand(1, 3, 8, 8), (height, width))


def test_pack_unpack_round_trip_and_flux_order():
    latents = torch.arange(2 * 16 * 4 * 6, dtype=torch.float32).reshape(2, 16, 4, 6)
    tokens = pack_latents(latents)
    assert tokens.shape == (2, 2 * 3, 64)
    # token 0 holds the top-left 2x2 cell of every channel, channel-major then row, column
    assert torch.equal(tokens[0, 0, :4], latents[0, 0, :2, :2].flatten())
    assert torch.equal(unpack_latents(tokens, 4, 6), latents)


def test_image_token_ids_are_row_major_positions():
    ids = image_token_ids(2, 3)
    assert ids.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0], [0, 1, 1], [0, 1, 2]]


def test_vae_is_f16_with_the_sc_vae_layout(nano):
    vae = nano.vae
    assert vae.spatial_compression == 16
    assert vae.encoder.conv_in.stride == (2, 2)
    image = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        latents = vae.encode_mean(image)
        assert latents.shape == (1, 16, 4, 6)
        decoded = vae.decode_latents(latents)
        assert decoded.shape == (1, 3, 64, 96)
        # diffusers' own decode() routes through the same SC-VAE tail
        assert torch.equal(vae.decode(latents).sample, decoded)


def test_unknown_model_config_key_is_one_line_error():
    with pytest.raises(UsageError, match="unknown model config key"):
        ModelConfig.from_dict({"name": "x", "heads": 3})


def test_gradients_reach_transformer_and_vae(nano):
    model = OP4KSR.from_config(nano.config, seed=1)
    output = model(torch.rand(1, 3, 8, 8))
    output.mean().backward()
    assert model.transformer.x_embedder.weight.grad is not None
    assert model.vae.encoder.conv_in.weight.grad is not None


def test_benchmark_nano_forward_512(benchmark, nano):
    lr = torch.rand(1, 3, 128, 128)
    output = benchmark(nano.upscale, lr)
    assert output.shape == (1, 3, 512, 512)
