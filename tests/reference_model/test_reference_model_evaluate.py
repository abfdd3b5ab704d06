"""The diagnostics of reference_model/evaluate.py on a tiny built suite with LR images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import read_image, write_png
from reference_model.evaluate import ceilings, crop_consistency, main, psnr_8bit, shares, vae_psnr
from reference_model.model import OP4KSR, ModelConfig

KINDS = ("bicubic", "decoder", "block-means")
TINY_VAE = {
    "block_out_channels": [4, 8, 8, 8], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "latent_channels": 16, "layers_per_block": 1, "norm_num_groups": 4,
    "mid_block_add_attention": False, "stride": 2, "norm_type": "pixel",
}  # fmt: skip
TINY_TRANSFORMER = {
    "patch_size": 1, "in_channels": 64, "num_layers": 1, "num_single_layers": 1, "attention_head_dim": 16,
    "num_attention_heads": 2, "joint_attention_dim": 16, "pooled_projection_dim": 16, "guidance_embeds": False,
    "axes_dims_rope": [4, 6, 6],
}  # fmt: skip


def tiny_model(**changes) -> OP4KSR:
    values = {"name": "tiny", "transformer": TINY_TRANSFORMER, "vae": TINY_VAE, "bicubic_skip": True, **changes}
    return OP4KSR.from_config(ModelConfig.from_dict(values), seed=1).eval()


def with_lr_images(data):
    """Give the tiny suite's entries LR images (a plain 4x box downscale of the HR)."""
    suite = BuiltSuite.open(data, "train")
    for entry in suite.entries:
        hr = read_image(suite.hr_path(entry)).astype(np.float64)
        lr = hr.reshape(hr.shape[0] // 4, 4, hr.shape[1] // 4, 4, 3).mean(axis=(1, 3))
        entry["lr"] = f"lr/{entry['id']}.png"
        write_png(suite.root / entry["lr"], np.round(lr).astype(np.uint8))
    return suite


def test_psnr_8bit():
    image = np.full((4, 4, 3), 100, np.uint8)
    assert psnr_8bit(image, image) == math.inf
    assert math.isclose(psnr_8bit(image, image + 1), 10 * math.log10(255.0**2))


def test_vae_psnr_is_the_reconstruction_of_each_hr_image(tiny_data):
    suite = BuiltSuite.open(tiny_data, "train")
    model = tiny_model()
    scores = vae_psnr(model, suite)
    assert sorted(scores) == sorted(entry["id"] for entry in suite.entries)
    first = suite.entries[0]
    hr = read_image(suite.hr_path(first))
    with torch.no_grad():
        image = torch.from_numpy(hr).permute(2, 0, 1).float().div(255)[None]
        reconstruction = model.reconstruct(image)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    border = slice(4, -4)  # the tiny suite's crop_border
    assert math.isclose(scores[first["id"]], psnr_8bit(reconstruction[border, border], hr[border, border]))


def test_crop_consistency_is_exact_for_bicubic_and_finite_otherwise(tiny_data):
    suite = with_lr_images(tiny_data)  # 256 px HR, 64 px LR
    model = tiny_model()
    # gate 0: the output is the benchmark's bicubic, whose taps reach 2 LR px (8 HR px) past a pixel: beyond
    # that margin the region alone and inside its neighbourhood agree exactly, within it they do not
    scores = crop_consistency(model, suite, region=64, context=256, margin=8)
    assert scores and all(value == math.inf for value in scores.values())
    assert all(math.isfinite(value) for value in crop_consistency(model, suite, 64, 256, margin=0).values())
    with torch.no_grad():
        model.skip_gate.fill_(1.0)
    scores = crop_consistency(model, suite, region=64, context=256)
    assert all(math.isfinite(value) for value in scores.values())  # the random transformer sees the context


def test_ceilings_block_means_beat_bicubic_and_keys_name_each_crop(tiny_data):
    suite = with_lr_images(tiny_data)
    scores = ceilings(tiny_model(), suite, size=64, corners=((0, 0), (8, 4), (60, 0)))  # (60, 0) does not fit
    ids = [entry["id"] for entry in suite.entries]
    assert sorted(scores) == sorted(f"{i}@{c}:{k}" for i in ids for c in ("0,0", "8,4") for k in KINDS)
    for key, value in scores.items():
        if key.endswith(":bicubic"):  # the residual's block means are its projection: never worse (up to rounding)
            assert scores[key.replace(":bicubic", ":block-means")] >= value - 0.05


def test_shares_split_the_prefilter_from_the_transformer(tiny_data):
    suite = with_lr_images(tiny_data)
    model = tiny_model(skip_prefilter=3)
    scores = shares(model, suite)  # identity prefilter, zero gate: all three are the bicubic method
    for entry in suite.entries:
        values = {kind: scores[f"{entry['id']}:{kind}"] for kind in ("bicubic", "prefilter", "model")}
        assert values["bicubic"] == values["prefilter"] == values["model"]
    with torch.no_grad():
        model.skip_prefilter.fill_(1 / 9)  # a box filter
        model.skip_gate.fill_(0.5)
    scores = shares(model, suite)
    first = suite.entries[0]["id"]
    assert scores[f"{first}:prefilter"] != scores[f"{first}:bicubic"] != scores[f"{first}:model"]
    assert float(model.skip_gate.min()) == 0.5  # the gate is restored after the prefilter-only pass
    with pytest.raises(UsageError, match="needs a bicubic_skip model"):
        shares(tiny_model(bicubic_skip=False), suite)


def test_command_line(tiny_data, tmp_path, capsys):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    assert main(["vae-psnr", "--weights", str(tmp_path / "m"), "--suite", "train", "--data", str(tiny_data)]) == 0
    assert "vae-psnr" in capsys.readouterr().out
    assert main(["vae-psnr", "--weights", str(tmp_path / "m"), "--suite", "nope", "--data", str(tiny_data)]) == 2
