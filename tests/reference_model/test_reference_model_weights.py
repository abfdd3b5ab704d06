"""Saving and loading: bit-exact round trips, LoRA, a folder laid out like the real weights, and the method."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import FluxTransformer2DModel
from safetensors.torch import save_file

from op4ksr_bench.errors import UsageError, WeightsMissingError
from reference_model.configs import load_config_file
from reference_model.model import OP4KSR, ModelConfig
from reference_model.vae import F16AutoencoderKL

TINY_TRANSFORMER = dict(
    in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=24, pooled_projection_dim=12, guidance_embeds=True, axes_dims_rope=(4, 6, 6),
)  # fmt: skip
TINY_VAE = dict(
    block_out_channels=(4, 4, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, layers_per_block=1, norm_num_groups=4,
    scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False, stride=2,
)  # fmt: skip


def nano_model(seed: int = 0, **changes) -> OP4KSR:
    values = dict(load_config_file("nano")["model"], **changes)
    return OP4KSR.from_config(ModelConfig.from_dict(values), seed=seed).eval()


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = nano_model(seed=3)
    lr = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    before = model.upscale(lr)
    model.save_pretrained(tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} == {
        "op4ksr.json", "transformer", "vae", "prompt_embeddings.safetensors",
    }  # fmt: skip
    loaded = OP4KSR.from_pretrained(tmp_path / "saved")
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[key], restored[key]) for key in original)
    assert loaded.config == model.config
    assert torch.equal(loaded.upscale(lr), before)


def test_lora_round_trip_saves_only_the_adapter_over_a_base_folder(tmp_path):
    base = nano_model(seed=5)
    base.transformer.save_pretrained(tmp_path / "base")
    prompts = {"prompt_embeds": base.prompt_embeds, "pooled_prompt_embeds": base.pooled_prompt_embeds}
    save_file(prompts, str(tmp_path / "base" / "prompt_embeddings.safetensors"))
    model = nano_model(
        seed=5, transformer_path=str(tmp_path / "base"), prompt_embeddings=str(tmp_path / "base"), lora_rank=4,
        train_vae=False,
    )  # fmt: skip
    assert model.has_lora
    trainable = model.trainable_parameters()
    assert trainable and all("lora_" in n for n, p in model.named_parameters() if any(p is t for t in trainable))
    with torch.no_grad():
        for parameter in trainable:
            parameter.normal_(0, 0.05)
    lr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    before = model.upscale(lr)
    assert not torch.equal(before, base.upscale(lr))  # the adapter changes the output
    model.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "transformer_lora" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "lora" / "transformer").exists()  # the base is reloaded from transformer_path
    loaded = OP4KSR.from_pretrained(tmp_path / "lora")
    assert loaded.has_lora
    assert torch.equal(loaded.upscale(lr), before)


def write_real_layout(folder, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A folder laid out like FLUX.1-dev + SC-VAE weights: sharded transformer (real FLUX key names, diffusers'
    own class), AutoencoderKL config with stride, prompt embeddings; weights stored in ``dtype``."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**TINY_TRANSFORMER).to(dtype)
    transformer.save_pretrained(folder / "transformer", safe_serialization=True, max_shard_size="100KB")
    vae = F16AutoencoderKL(**TINY_VAE).to(dtype)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    config_path = folder / "vae" / "config.json"
    config = json.loads(config_path.read_text())
    config["_class_name"] = "AutoencoderKL"  # as the published SC-VAE folder names it
    config_path.write_text(json.dumps(config))
    save_file(
        {"prompt_embeds": torch.randn(1, 7, 24), "pooled_prompt_embeds": torch.randn(1, 12)},
        str(folder / "prompt_embeddings.safetensors"),
    )
    return transformer, vae


def test_loads_a_folder_laid_out_like_the_real_weights(tmp_path):
    transformer, vae = write_real_layout(tmp_path)
    assert len(list((tmp_path / "transformer").glob("*.safetensors"))) > 1  # sharded, like FLUX.1-dev
    model = OP4KSR.from_pretrained(tmp_path)
    assert model.config.name == "flux-dev-f16"  # no op4ksr.json: the flux-dev-f16 model settings apply
    assert model.rope_thetas == tuple(10000 * 4.0 ** (d / (d - 2)) for d in (4, 6, 6))
    for key, value in transformer.state_dict().items():
        assert torch.equal(model.transformer.state_dict()[key], value), key
    for key, value in vae.state_dict().items():
        assert torch.equal(model.vae.state_dict()[key], value), key
    assert model.vae.encoder.conv_in.stride == (2, 2)
    output = model.upscale(torch.rand(1, 3, 8, 16))
    assert output.shape == (1, 3, 32, 64)


def test_missing_files_give_one_line_naming_them(tmp_path):
    write_real_layout(tmp_path)
    (tmp_path / "prompt_embeddings.safetensors").unlink()
    with pytest.raises(WeightsMissingError, match="prompt_embeddings.safetensors is missing") as error:
        OP4KSR.from_pretrained(tmp_path)
    assert "\n" not in str(error.value)
    for shard in (tmp_path / "vae").glob("*.safetensors"):
        shard.unlink()
    with pytest.raises(WeightsMissingError, match="no \\*.safetensors in"):
        OP4KSR.from_pretrained(tmp_path)
    with pytest.raises(WeightsMissingError, match="does not exist"):
        OP4KSR.from_pretrained(tmp_path / "nowhere")


def test_method_gives_exactly_4x_on_any_size(tmp_path):
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod

    nano_model(seed=2).save_pretrained(tmp_path / "nano")
    method = Op4ksrMethod(weights=str(tmp_path / "nano"))
    for height, width in [(8, 8), (17, 30), (27, 48), (5, 3)]:
        lr = torch.rand(1, 3, height, width)
        assert method.upscale(lr).shape == (1, 3, 4 * height, 4 * width)
    # on the token pitch no padding happens: the method equals the model
    lr = torch.rand(1, 3, 16, 24)
    assert torch.equal(method.upscale(lr), method.model.upscale(lr))
    options = method.options()
    assert options["pad"] == "reflect" and options["weights"] == str(tmp_path / "nano")
    assert method.periods() == (16, 32)
    strict = Op4ksrMethod(weights=str(tmp_path / "nano"), pad="none")
    with pytest.raises(UsageError, match="multiple of 32"):
        strict.upscale(torch.rand(1, 3, 9, 8))


def test_method_reports_a_missing_weights_folder(tmp_path):
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod

    with pytest.raises(WeightsMissingError, match="not found"):
        Op4ksrMethod(weights=str(tmp_path / "absent"))


def test_shipped_default_checkpoint_loads_and_matches_the_card():
    from op4ksr_bench.atomic import sha256_file
    from op4ksr_bench.methods.op4ksr import DEFAULT_CHECKPOINT, Op4ksrMethod, shipped_checkpoint

    folder = shipped_checkpoint()
    for reference in Op4ksrMethod.card.weights:
        relative = reference.name.removeprefix(f"op4ksr-{DEFAULT_CHECKPOINT}/")
        assert sha256_file(folder / relative) == reference.sha256, relative
    assert len(Op4ksrMethod.card.weights) == 4  # transformer, VAE, prompt embeddings, skip gate + prefilter
    method = Op4ksrMethod()
    assert method.model.config.name == "cpu-skip-pf" and method.options()["rfr_mode"] == "none"
    assert method.upscale(torch.rand(1, 3, 10, 12)).shape == (1, 3, 40, 48)


def test_real_layout_in_bf16_loads_without_float32_and_trains_only_the_lora(tmp_path, tiny_data):
    """bf16 real-layout folder -> from_pretrained (no float32 copy) -> one LoRA step of the trainer -> only the
    adapter changes, and neither the checkpoint nor final/ holds a base weight."""
    from safetensors.torch import load_file

    from reference_model.cost import _LiveBytes
    from reference_model.train import main

    weights = tmp_path / "flux"
    transformer, vae = write_real_layout(weights, dtype=torch.bfloat16)
    watch = _LiveBytes(None, None)
    with watch:
        model = OP4KSR.from_pretrained(weights, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    # read straight into bf16: the only float32 tensor is the stored (float32) prompt, 1 x 7 x 24, before its cast
    assert watch.largest_by_dtype.get(torch.float32, 0) == 7 * 24 < watch.largest_by_dtype[torch.bfloat16]
    for key, value in transformer.state_dict().items():
        assert torch.equal(model.transformer.state_dict()[key], value), key

    out = tmp_path / "run"
    model_options = [
        f"model.transformer_path={weights / 'transformer'}", f"model.vae_path={weights / 'vae'}",
        f"model.prompt_embeddings={weights}", "model.lora_rank=4", "model.train_vae=false", "model.prompt_length=7",
        "model.transformer={}", "model.vae={}", "model.partitioned_decode=true",
    ]  # fmt: skip
    options = [
        "mixed_precision=bf16", "batch_size=2", "crop_size=64", "ap_periods=[16]", "warmup_steps=0",
        "learning_rate=1e-2", "validation_count=1", "validation_crop_size=64", "log_every=1", "validate_every=10",
        "checkpoint_every=10", "lr_schedule=constant",
    ]  # fmt: skip
    sets = [item for option in [*model_options, *options] for item in ("--set", option)]
    assert main(["--config", "nano", "--data", str(tiny_data), "--out", str(out), "--max-steps", "1", *sets]) == 0

    trained = load_file(str(out / "checkpoint" / "trained.safetensors"))
    assert trained and all("lora_" in key for key in trained)  # no base weight in the checkpoint
    assert all(value.dtype == torch.float32 for value in trained.values())  # the adapter trains in float32
    for group in ("ema", "optimizer"):
        assert all("lora_" in key for key in load_file(str(out / "checkpoint" / f"{group}.safetensors")))
    assert sorted(p.name for p in (out / "final").iterdir()) == [
        "op4ksr.json",
        "prompt_embeddings.safetensors",
        "transformer_lora",
    ]  # fmt: skip  (base transformer and frozen VAE are reloaded from their folders)

    final = OP4KSR.from_pretrained(out / "final", dtype=torch.bfloat16)
    assert final.has_lora and final.config.partitioned_decode and final.vae.partitioned_decode
    before = {k: v for k, v in transformer.state_dict().items()}
    after = final.transformer.state_dict()
    for key, value in before.items():  # every base weight is bit-identical
        assert torch.equal(after[key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")]
                           if key not in after else after[key], value), key  # fmt: skip
    for key, value in vae.state_dict().items():
        assert torch.equal(final.vae.state_dict()[key], value), key
    lora_b = [value for key, value in after.items() if "lora_B" in key]
    assert lora_b and any(value.abs().max() > 0 for value in lora_b)  # peft starts B at 0: the step moved it
