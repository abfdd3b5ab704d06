"""The CPU-scale options of the reference model: the bicubic skip (gate 0 = the benchmark's bicubic, bit for
bit), the frozen VAE (no gradient), the per-position VAE norm (a region does not depend on the crop), the VAE
pretraining stage, and every new config field surviving save/load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.methods.interpolation import BicubicMethod
from op4ksr_bench.methods.op4ksr import Op4ksrMethod
from reference_model.model import OP4KSR, SKIP_FILE, ModelConfig
from reference_model.train import load_train_config, main
from reference_model.vae import F16AutoencoderKL, PixelNorm

TINY_VAE = {
    "block_out_channels": [4, 8, 8, 8],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 16,
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "mid_block_add_attention": False,
    "scaling_factor": 1.0,
    "shift_factor": 0.0,
    "stride": 2,
    "norm_type": "pixel",
}
TINY_TRANSFORMER = {
    "patch_size": 1, "in_channels": 64, "num_layers": 1, "num_single_layers": 1, "attention_head_dim": 16,
    "num_attention_heads": 2, "joint_attention_dim": 16, "pooled_projection_dim": 16, "guidance_embeds": False,
    "axes_dims_rope": [4, 6, 6],
}  # fmt: skip


def skip_config(**changes) -> ModelConfig:
    values = {"name": "tiny-skip", "transformer": TINY_TRANSFORMER, "vae": TINY_VAE, "bicubic_skip": True}
    return ModelConfig.from_dict({**values, **changes})


def test_gate_at_zero_is_exactly_the_bicubic_method():
    model = OP4KSR.from_config(skip_config(), seed=3).eval()
    assert torch.equal(model.skip_gate, torch.zeros(3))
    lr = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))  # x4: 96 x 160, token multiples
    expected = BicubicMethod(scale=4).upscale(lr)
    assert torch.equal(model.upscale(lr), expected)  # bit-identical, not within rounding
    method = Op4ksrMethod.from_model(model, device="cpu", dtype="float32")
    assert torch.equal(method.upscale(lr), expected)
    # off the token pitch the method reflect-pads the LR: identical except in the last 8 output rows (2 LR rows
    # of padding reach 2 px into the cubic kernel's support, i.e. 8 output px)
    odd = lr[:, :, :22]
    padded = method.upscale(odd)
    reference = BicubicMethod(scale=4).upscale(odd)
    assert padded.shape == reference.shape == (1, 3, 88, 160)
    assert torch.equal(padded[..., :80, :], reference[..., :80, :])


def test_a_nonzero_gate_adds_the_decoded_latent_change():
    model = OP4KSR.from_config(skip_config(), seed=3).eval()
    with torch.no_grad():
        model.skip_gate.fill_(0.5)
    lr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    output = model(lr)
    bicubic = BicubicMethod(scale=4).upscale(lr)
    with torch.no_grad():
        z_lr = model.encode(bicubic)
        change = model.decode(model.denoise(z_lr)) - model.decode(z_lr)
    assert torch.allclose(output, bicubic + 0.5 * change, atol=1e-4)  # memory formats: other summation orders
    assert not torch.equal(output, bicubic)


def test_frozen_vae_receives_no_gradient_and_the_gate_does():
    model = OP4KSR.from_config(skip_config(train_vae=False), seed=0)
    with torch.no_grad():
        model.skip_gate.fill_(0.1)  # a zero gate would also block the transformer's gradient
    lr = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    loss = torch.mean((model(lr) - hr) ** 2)
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in model.vae.parameters())
    assert model.skip_gate.grad is not None and float(model.skip_gate.grad.abs().sum()) > 0
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.transformer.parameters())
    trained = {id(p) for p in model.trainable_parameters()}
    assert id(model.skip_gate) in trained and not any(id(p) in trained for p in model.vae.parameters())


def test_a_trained_vae_does_receive_gradients():  # the frozen test above is not vacuous
    model = OP4KSR.from_config(skip_config(train_vae=True), seed=0)
    with torch.no_grad():
        model.skip_gate.fill_(0.1)
    loss = torch.mean(model(torch.rand(1, 3, 8, 8)) ** 2)
    loss.backward()
    assert all(p.grad is not None for p in model.vae.decoder.parameters())


def test_pixel_norm_vae_gives_a_region_the_same_output_as_a_crop_or_inside_a_larger_image():
    torch.manual_seed(0)
    vae = F16AutoencoderKL(**TINY_VAE).eval()
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in vae.modules())
    assert sum(isinstance(m, PixelNorm) for m in vae.modules()) > 0
    grouped = F16AutoencoderKL(**{**TINY_VAE, "norm_type": "group"}).eval()
    grouped.load_state_dict(vae.state_dict())  # the same keys and weights; only the normalisation differs
    generator = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 64, 1536, generator=generator) * 2 - 1
    other = image.clone()
    other[..., 1024:] = torch.rand(1, 3, 64, 512, generator=generator) * 2 - 1  # different content far away
    crop = image[..., :1024]  # the same region as a crop

    def left(model, x):  # the first 256 columns lie more than the receptive field (about 350 px) from column 1024
        with torch.no_grad():
            return model.decode_latents(model.encode_mean(x))[..., :, :256]

    # same size, other content far away: bit-identical; as a crop: equal up to rounding (other conv algorithms
    # for another width give differences of about 1e-4 with these random weights)
    assert torch.equal(left(vae, image), left(vae, other))
    assert (left(vae, image) - left(vae, crop)).abs().max() < 1e-3
    # with GroupNorm the statistics are global, so both change the region well beyond rounding
    assert (left(grouped, image) - left(grouped, other)).abs().max() > 1e-2
    assert (left(grouped, image) - left(grouped, crop)).abs().max() > 1e-2


def test_new_fields_round_trip_through_save_and_load(tmp_path):
    model = OP4KSR.from_config(skip_config(train_vae=False), seed=5).eval()
    with torch.no_grad():
        model.skip_gate.copy_(torch.tensor([0.25, -0.5, 0.125]))
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "op4ksr.json").read_text())["model"]
    assert saved["bicubic_skip"] is True and saved["train_vae"] is False and saved["vae"]["norm_type"] == "pixel"
    assert json.loads((tmp_path / "m" / "vae" / "config.json").read_text())["norm_type"] == "pixel"
    assert torch.equal(load_file(str(tmp_path / "m" / SKIP_FILE))["gate"], model.skip_gate.detach())
    loaded = OP4KSR.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    assert torch.equal(loaded.skip_gate.detach(), model.skip_gate.detach())
    assert all(isinstance(m, PixelNorm) for m in loaded.vae.modules() if "norm" in type(m).__name__.lower())
    assert not any(p.requires_grad for p in loaded.vae.parameters())
    lr = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(6))
    assert torch.equal(loaded.upscale(lr), model.upscale(lr))
    (tmp_path / "m" / SKIP_FILE).unlink()
    with pytest.raises(WeightsMissingError, match="skip.safetensors is missing"):
        OP4KSR.from_pretrained(tmp_path / "m")


def test_bad_norm_type_and_stage_are_one_line_errors():
    with pytest.raises(ValueError, match="norm_type must be one of group, pixel"):
        F16AutoencoderKL(**{**TINY_VAE, "norm_type": "batch"})
    with pytest.raises(UsageError, match="stage must be one of sr, vae"):
        load_train_config("cpu-skip", {"stage": "decoder"})
    config = load_train_config("cpu-skip", {"save_frozen_vae": False})
    assert config.stage == "sr" and config.save_frozen_vae is False and config.model["bicubic_skip"] is True
    assert load_train_config("cpu-skip-vae", {}).stage == "vae"


def test_two_stage_recipe_pretrains_then_freezes_the_vae(tiny_data, tmp_path):
    fast = [
        "--set", "batch_size=2", "--set", "crop_size=64", "--set", "ap_periods=[16]", "--set", "warmup_steps=1",
        "--set", "validation_count=1", "--set", "validation_crop_size=128", "--set", "validate_every=4",
        "--set", "checkpoint_every=4", "--set", "log_every=2",
        "--set", f"model.vae={json.dumps(TINY_VAE)}", "--set", f"model.transformer={json.dumps(TINY_TRANSFORMER)}",
    ]  # fmt: skip
    stage1 = tmp_path / "vae"
    assert (
        main(["--config", "cpu-skip-vae", "--data", str(tiny_data), "--out", str(stage1), "--max-steps", "4", *fast])
        == 0
    )
    vae_folder = stage1 / "final" / "vae"
    vae_config = json.loads((vae_folder / "config.json").read_text())
    assert vae_config["scaling_factor"] != 1.0 and vae_config["shift_factor"] != 0.0  # measured latent statistics
    trained = json.loads((stage1 / "checkpoint" / "state.json").read_text())["trained"]
    assert trained and all(name.startswith("vae.") for name in trained)
    stage2 = tmp_path / "sr"
    args = ["--config", "cpu-skip", "--data", str(tiny_data), "--out", str(stage2), "--max-steps", "4", *fast]
    assert main([*args, "--set", f"model.vae_path={vae_folder}"]) == 0
    trained = json.loads((stage2 / "checkpoint" / "state.json").read_text())["trained"]
    assert "skip_gate" in trained and not any(name.startswith("vae.") for name in trained)
    before = load_file(str(vae_folder / "diffusion_pytorch_model.safetensors"))
    after = load_file(str(stage2 / "final" / "vae" / "diffusion_pytorch_model.safetensors"))  # save_frozen_vae
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    model = OP4KSR.from_pretrained(stage2 / "final")
    assert float(model.skip_gate.abs().sum()) > 0  # the gate left zero: the model is no longer plain bicubic


def test_shipped_checkpoints_are_selected_by_name(tmp_path, monkeypatch):
    from op4ksr_bench.methods.op4ksr import SHIPPED_CHECKPOINTS, shipped_checkpoint

    assert set(SHIPPED_CHECKPOINTS) == {"nano", "cpu-skip", "cpu-skip-pf"}
    method = Op4ksrMethod(weights="nano")
    assert method.weights_folder == shipped_checkpoint("nano") and method.model.config.name == "nano"
    with pytest.raises(UsageError, match="no shipped checkpoint 'tiny'; shipped: nano, cpu-skip, cpu-skip-pf"):
        shipped_checkpoint("tiny")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nano").mkdir()  # a folder of the same name: the shipped checkpoint still wins; ./nano is the folder
    assert Op4ksrMethod(weights="nano").weights_folder == shipped_checkpoint("nano")
    with pytest.raises(WeightsMissingError, match="op4ksr.json is missing|transformer"):
        Op4ksrMethod(weights="./nano")


def test_shipped_cpu_skip_checkpoint_loads_and_is_not_plain_bicubic():
    method = Op4ksrMethod(weights="cpu-skip")
    config = method.model.config
    assert config.name == "cpu-skip" and config.bicubic_skip and not config.train_vae
    assert method.model.vae.config.norm_type == "pixel" and float(method.model.skip_gate.abs().min()) > 0
    lr = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(7))
    output = method.upscale(lr)
    assert output.shape == (1, 3, 64, 96) and not torch.equal(output, BicubicMethod(scale=4).upscale(lr))


def test_prefilter_at_identity_is_exactly_bicubic_and_learns_through_the_bicubic():
    import torch.nn.functional as F

    from reference_model.model import benchmark_bicubic

    model = OP4KSR.from_config(skip_config(skip_prefilter=3, train_vae=False), seed=3).eval()
    lr = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.upscale(lr), BicubicMethod(scale=4).upscale(lr))  # identity init: bicubic bit for bit
    box = torch.full((3, 1, 3, 3), 1 / 9)
    with torch.no_grad():
        model.skip_prefilter.copy_(box)
    smoothed = benchmark_bicubic(F.conv2d(F.pad(lr, (1, 1, 1, 1), mode="replicate"), box, groups=3), (96, 160))
    assert torch.allclose(model.upscale(lr), smoothed, atol=1e-6) and not torch.equal(smoothed, model.upscale(lr) * 0)
    model.train()
    hr = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    torch.mean((model(lr) - hr) ** 2).backward()
    assert float(model.skip_prefilter.grad.abs().sum()) > 0  # the gradient reaches it through the bicubic
    assert id(model.skip_prefilter) in {id(p) for p in model.trainable_parameters()}
    assert all(p.grad is None for p in model.vae.parameters())


def test_prefilter_round_trips_and_bad_files_or_configs_are_one_line_errors(tmp_path):
    model = OP4KSR.from_config(skip_config(skip_prefilter=3, train_vae=False), seed=5).eval()
    with torch.no_grad():
        model.skip_prefilter.add_(0.01 * torch.arange(27.0).view(3, 1, 3, 3))
        model.skip_gate.fill_(0.2)
    model.save_pretrained(tmp_path / "m")
    saved = load_file(str(tmp_path / "m" / SKIP_FILE))
    assert set(saved) == {"gate", "prefilter"} and torch.equal(saved["prefilter"], model.skip_prefilter.detach())
    loaded = OP4KSR.from_pretrained(tmp_path / "m")
    assert loaded.config.skip_prefilter == 3 and torch.equal(loaded.skip_prefilter, model.skip_prefilter)
    lr = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(6))
    assert torch.equal(loaded.upscale(lr), model.upscale(lr))
    from safetensors.torch import save_file

    save_file({"gate": torch.zeros(3)}, str(tmp_path / "m" / SKIP_FILE))  # a gate without the prefilter
    with pytest.raises(WeightsMissingError, match=r"must hold exactly 'gate' of shape \[3\], 'prefilter' of shape"):
        OP4KSR.from_pretrained(tmp_path / "m")
    for changes in ({"skip_prefilter": 4}, {"skip_prefilter": 3, "bicubic_skip": False}, {"skip_prefilter": -3}):
        with pytest.raises(UsageError, match="skip_prefilter must be 0 or an odd kernel size"):
            skip_config(**changes)


def test_skip_learning_rate_and_init_from_in_the_trainer(tiny_data, tmp_path):
    fast = [
        "--set", "batch_size=2", "--set", "crop_size=64", "--set", "ap_periods=[16]", "--set", "warmup_steps=1",
        "--set", "validation_count=1", "--set", "validation_crop_size=128", "--set", "validate_every=4",
        "--set", "checkpoint_every=4", "--set", "log_every=2", "--set", "model.skip_prefilter=3",
        "--set", f"model.vae={json.dumps(TINY_VAE)}", "--set", f"model.transformer={json.dumps(TINY_TRANSFORMER)}",
        "--set", "model.vae_path=null", "--set", "model.train_vae=false", "--set", "skip_learning_rate=0.05",
    ]  # fmt: skip
    first = tmp_path / "first"
    assert (
        main(["--config", "cpu-skip-pf", "--data", str(tiny_data), "--out", str(first), "--max-steps", "3", *fast]) == 0
    )
    state = json.loads((first / "checkpoint" / "state.json").read_text())
    groups = state["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == [0.05, 1e-3]  # the skip's gate and prefilter, then the transformer
    assert state["trained"][:2] == ["skip_gate", "skip_prefilter"] and len(groups[0]["params"]) == 2
    source = OP4KSR.from_pretrained(first / "final")
    second = tmp_path / "second"
    args = ["--config", "cpu-skip-pf", "--data", str(tiny_data), "--out", str(second), "--max-steps", "0", *fast]
    assert main([*args, "--set", f"init_from={first / 'final'}"]) == 0  # no step: final/ is the initialisation
    started = OP4KSR.from_pretrained(second / "final")
    for (name, a), (_, b) in zip(source.named_parameters(), started.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    assert main([*args, "--out", str(tmp_path / "third"), "--set", f"init_from={tmp_path}"]) == 2  # not a model folder


def test_default_checkpoint_is_cpu_skip_pf_with_a_learned_prefilter():
    from op4ksr_bench.methods.op4ksr import DEFAULT_CHECKPOINT, shipped_checkpoint

    method = Op4ksrMethod()
    assert DEFAULT_CHECKPOINT == "cpu-skip-pf" and method.weights_folder == shipped_checkpoint()
    model = method.model
    assert model.config.name == "cpu-skip-pf" and model.config.skip_prefilter == 3 and not model.config.train_vae
    identity = torch.zeros(3, 1, 3, 3)
    identity[:, :, 1, 1] = 1.0
    assert float((model.skip_prefilter - identity).abs().max()) > 0.1  # trained away from the identity
    assert torch.allclose(model.skip_prefilter.sum(dim=(1, 2, 3)), torch.ones(3), atol=0.05)  # keeps the mean
    lr = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(method.upscale(lr), BicubicMethod(scale=4).upscale(lr))
