"""spandrel:PATH with tiny real networks written by the tests (RRDBNet/ESRGAN and SwinIR)."""

from __future__ import annotations

import pytest
import torch

from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.methods.factory import create_method
from op4ksr_bench.methods.realesrgan import save_state_dict


@pytest.fixture
def esrgan_file(tmp_path, rrdb_tools):
    random_state, _, layout = rrdb_tools
    path = tmp_path / "tiny_esrgan.safetensors"
    save_state_dict(path, random_state(layout), {"source": "test"})
    return path


@pytest.fixture
def swinir_file(tmp_path):
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    model = SwinIR(upscale=4, in_chans=3, img_size=16, window_size=4, img_range=1.0, depths=[1], embed_dim=12,
                   num_heads=[2], mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")  # fmt: skip
    path = tmp_path / "tiny_swinir.pth"
    torch.save(model.state_dict(), path)
    return path


def test_esrgan_weights_run_with_the_contract(esrgan_file):
    method = create_method(f"spandrel:{esrgan_file}", scale=4)
    out = method.upscale(torch.rand(1, 3, 10, 7))
    assert out.shape == (1, 3, 40, 28) and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    options = method.options()
    assert options["architecture"] == "ESRGAN" and len(options["sha256"]) == 64
    assert method.card.name == "spandrel:tiny_esrgan.safetensors"


def test_channels_last_gives_the_same_result(esrgan_file):
    image = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    a = create_method(f"spandrel:{esrgan_file}", options={"channels_last": True}).upscale(image)
    b = create_method(f"spandrel:{esrgan_file}", options={"channels_last": False}).upscale(image)
    assert (a - b).abs().max() < 1e-5


def test_size_requirements_fail_unless_padding_is_asked_for(swinir_file):
    method = create_method(f"spandrel:{swinir_file}")
    assert method.upscale(torch.rand(1, 3, 16, 20)).shape == (1, 3, 64, 80)
    with pytest.raises(ValueError, match="size requirements"):
        method.upscale(torch.rand(1, 3, 12, 20))
    padded = create_method(f"spandrel:{swinir_file}", options={"pad": True})
    assert padded.upscale(torch.rand(1, 3, 12, 20)).shape == (1, 3, 48, 80)
    assert padded.options()["pad"] is True


def test_scale_mismatch_and_bad_files(esrgan_file, tmp_path):
    with pytest.raises(UsageError, match="supports scale"):
        create_method(f"spandrel:{esrgan_file}", scale=2)
    with pytest.raises(WeightsMissingError, match="not found"):
        create_method(f"spandrel:{tmp_path / 'absent.pth'}")
    junk = tmp_path / "junk.pth"
    torch.save({"not": torch.zeros(3)}, junk)
    with pytest.raises(UsageError, match="does not recognise"):
        create_method(f"spandrel:{junk}")
