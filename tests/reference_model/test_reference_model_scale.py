"""Real scale without real weights: SC-VAE's partitioned decode, the memory plan of full-size FLUX.1-dev + SC-VAE on
the meta device, and the one-line refusals a real-weights user meets (prompt file, VAE compression, tiling)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from op4ksr_bench.errors import UsageError, WeightsMissingError
from reference_model.configs import load_config_file
from reference_model.cost import _LiveBytes
from reference_model.model import OP4KSR, ModelConfig
from reference_model.vae import F16AutoencoderKL, partitioned_last_stage

TINY_VAE = dict(
    block_out_channels=(4, 4, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, layers_per_block=1, norm_num_groups=4,
    use_quant_conv=False, use_post_quant_conv=False, stride=2,
)  # fmt: skip


def sc_vae_quadrants(conv_out: torch.nn.Conv2d, sample: torch.Tensor) -> torch.Tensor:
    """SC-VAE's last stage as its authors run it: four quadrants of the half-resolution activation, each with one
    neighbouring row/column inside and one zero row/column outside, upsampled x2, convolved, border cropped."""
    height, width = sample.shape[-2:]
    half_h, half_w = height // 2, width // 2
    rows = []
    for top in (0, half_h):
        row = []
        for left in (0, half_w):
            part = sample[:, :, max(top - 1, 0) : min(top + half_h + 1, height),
                          max(left - 1, 0) : min(left + half_w + 1, width)]  # fmt: skip
            padding = (1, 0) if left == 0 else (0, 1)
            padding += (1, 0) if top == 0 else (0, 1)
            part = conv_out(F.interpolate(F.pad(part, padding), scale_factor=2, mode="nearest"))
            row.append(part[:, :, 1 : 2 * half_h + 1, 1 : 2 * half_w + 1])
        rows.append(torch.cat(row, dim=3))
    return torch.cat(rows, dim=2)


def test_partitioned_decode_equals_the_sc_vae_quadrant_computation():
    torch.manual_seed(0)
    vae = F16AutoencoderKL(**TINY_VAE).double().eval()
    latents = torch.randn(2, 16, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        partitioned = vae.decode_latents(latents, partitioned=True)
        plain = vae.decode_latents(latents, partitioned=False)
        # the same decoder up to the last stage, then the quadrants by hand
        sample = vae.decoder.conv_in(latents)
        sample = vae.decoder.mid_block(sample, None)
        for block in vae.decoder.up_blocks:
            sample = block(sample, None)
        sample = vae.decoder.conv_act(vae.decoder.conv_norm_out(sample))
        reference = sc_vae_quadrants(vae.decoder.conv_out, sample)
        many_parts = partitioned_last_stage(vae.decoder.conv_out, sample, max_elements=500)
    assert partitioned.shape == plain.shape == (2, 3, 64, 96)
    torch.testing.assert_close(partitioned, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(many_parts, reference, rtol=0, atol=1e-12)
    # the plain path is the same image shifted by one pixel diagonally, with other borders
    torch.testing.assert_close(plain[:, :, :-1, :-1], partitioned[:, :, 1:, 1:], rtol=0, atol=1e-12)
    assert not torch.allclose(plain, partitioned)
    vae.partitioned_decode = True
    with torch.no_grad():
        assert torch.equal(vae.decode(latents).sample, partitioned)  # diffusers' decode() takes the same path


def test_vae_tiling_is_refused_in_one_line():
    vae = F16AutoencoderKL(**TINY_VAE)
    with pytest.raises(UsageError, match="does not tile") as error:
        vae.enable_tiling()
    assert "\n" not in str(error.value)


def test_full_size_flux_dev_sc_vae_memory_plan_on_meta():
    """FLUX.1-dev + SC-VAE at full size, bf16, on the meta device: no float32 weights, and a 4096x4096 forward
    whose decode keeps every tensor below 2^31 elements (CUDA's 32-bit indexing) only with the partitioned stage."""
    config = ModelConfig.from_dict(load_config_file("flux-dev-f16")["model"])
    assert config.partitioned_decode
    created = _LiveBytes(None, None)
    with created:
        model = OP4KSR.from_config(config, device="meta", dtype=torch.bfloat16).eval()
    # built in bf16: the only float32 tensors are peft's LoRA factors before it casts them (64 x 3072); no base
    # weight (the smallest transformer matrix has 3072 x 3072 elements) ever exists in float32, even on paper
    assert created.largest_by_dtype.get(torch.float32, 0) <= 64 * 3072 < 3072 * 3072
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    transformer = sum(p.numel() for n, p in model.transformer.named_parameters() if "lora_" not in n)
    vae = sum(p.numel() for p in model.vae.parameters())
    assert (transformer, vae) == (11_901_408_320, 83_819_683)
    assert sum(p.numel() * p.element_size() for p in model.parameters()) < 2.3 * (transformer + vae)  # ~2 bytes each

    lr = torch.empty(1, 3, 1024, 1024, device="meta", dtype=torch.bfloat16)
    tokens = 16_384 + 512
    with torch.no_grad():
        latents = model.encode(F.interpolate(lr, size=(4096, 4096), mode="bicubic"))
        decode = _LiveBytes(None, latents.shape[-1] * latents.shape[-2])  # VAE attention scores excluded
        with decode:
            image = model.decode(latents)
        # attention scores (transformer and VAE mid-block) excluded: flash attention never materialises them
        forward = _LiveBytes(None, (tokens, latents.shape[-1] * latents.shape[-2]))
        with forward:
            output = model(lr)
        plain = _LiveBytes(None, latents.shape[-1] * latents.shape[-2])
        with plain:
            model.vae.decode_latents(latents, partitioned=False)
    assert image.shape == output.shape == (1, 3, 4096, 4096)
    assert decode.largest < 2**31 <= plain.largest  # the plain last stage makes a 4096 * 4096 * 128 tensor
    assert forward.largest < 2**31
    # the network runs in bf16: float32 appears only at image planes (the returned image; the meta decomposition of
    # bicubic resizing), never for a 128-channel activation (4096 * 4096 * 128 or 2048 * 2048 * 128 elements)
    assert 3 * 4096 * 4096 <= forward.largest_by_dtype[torch.float32] < 2 * 3 * 4096 * 4096 < 2048 * 2048 * 128
    assert forward.largest_by_dtype[torch.bfloat16] < 2**31


def test_real_transformer_needs_the_stored_prompt_and_a_declared_f16_vae(tmp_path):
    from diffusers import FluxTransformer2DModel

    transformer = FluxTransformer2DModel(
        in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=24, pooled_projection_dim=12, axes_dims_rope=(4, 6, 6),
    )  # fmt: skip
    transformer.save_pretrained(tmp_path / "transformer")
    values = dict(load_config_file("nano")["model"], transformer_path=str(tmp_path / "transformer"))
    with pytest.raises(WeightsMissingError, match="model.prompt_embeddings is not set") as error:
        OP4KSR.from_config(ModelConfig.from_dict(values))
    assert "python -m reference_model.prompt_embeddings" in str(error.value) and "\n" not in str(error.value)
    values["prompt_embeddings"] = str(tmp_path / "nowhere")
    with pytest.raises(WeightsMissingError, match="prompt_embeddings.safetensors is missing: write"):
        OP4KSR.from_config(ModelConfig.from_dict(values))

    # a VAE folder without "stride" (FLUX.1-dev's own F8 vae/) or with stride 1 is refused where F16 is expected
    vae = F16AutoencoderKL(**TINY_VAE)
    vae.save_pretrained(tmp_path / "vae")
    config_path = tmp_path / "vae" / "config.json"
    stock = json.loads(config_path.read_text())
    del stock["stride"]
    config_path.write_text(json.dumps(stock))
    values = dict(load_config_file("nano")["model"], vae_path=str(tmp_path / "vae"))
    with pytest.raises(UsageError, match='declares no compression \\("stride"\\)') as error:
        OP4KSR.from_config(ModelConfig.from_dict(values))
    assert "\n" not in str(error.value)
    config_path.write_text(json.dumps(dict(stock, stride=1)))
    with pytest.raises(UsageError, match='is an F8 VAE \\("stride": 1\\) where the model expects F16'):
        OP4KSR.from_config(ModelConfig.from_dict(values))


def test_from_scratch_prompt_is_recorded_as_seeded_random(tmp_path):
    model = OP4KSR.from_config(ModelConfig.from_dict(load_config_file("nano")["model"]))
    model.save_pretrained(tmp_path / "saved")
    payload = json.loads((tmp_path / "saved" / "op4ksr.json").read_text())
    assert payload["prompt_embeddings_source"] == "seeded-random"
    assert OP4KSR.from_pretrained(tmp_path / "saved").prompt_source == "seeded-random"
    from op4ksr_bench.methods.op4ksr import shipped_checkpoint

    assert OP4KSR.from_pretrained(shipped_checkpoint()).prompt_source == "seeded-random"  # saved before the field


@pytest.fixture(scope="module")
def nano_latents():
    model = OP4KSR.from_config(ModelConfig.from_dict(load_config_file("nano")["model"])).eval()
    return model.vae, torch.randn(1, 16, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("partitioned", [False, True], ids=["plain", "partitioned"])
def test_benchmark_nano_decode_512(benchmark, nano_latents, partitioned):
    """The plain and the partitioned last stage side by side (nano VAE, 512x512 output)."""
    vae, latents = nano_latents
    with torch.no_grad():
        image = benchmark(vae.decode_latents, latents, partitioned)
    assert image.shape == (1, 3, 512, 512)
