"""folder:PATH: precomputed outputs matched by image id, with an optional card.yaml."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import write_png
from op4ksr_bench.methods.factory import create_method


def test_outputs_are_matched_by_id(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    write_png(tmp_path / "img-a.png", array)
    (tmp_path / "card.yaml").write_text("display_name: MySR\nfamily: diffusion-onestep\nsteps: 1\nlicence: MIT\n")
    method = create_method(f"folder:{tmp_path}")
    assert method.card.display_name == "MySR" and method.card.family == "diffusion-onestep"
    out = method.upscale_sample("img-a", torch.zeros(1, 3, 2, 3))
    assert out.shape == (1, 3, 8, 12)
    assert torch.equal(out.mul(255).round().byte()[0].permute(1, 2, 0), torch.from_numpy(array))
    with pytest.raises(FileNotFoundError, match="no output for id 'img-b'"):
        method.upscale_sample("img-b", torch.zeros(1, 3, 2, 3))
    assert method.timing == "none"


def test_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="not a folder"):
        create_method(f"folder:{tmp_path / 'absent'}")
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a.jpg").write_bytes((tmp_path / "a.png").read_bytes())
    with pytest.raises(UsageError, match="both match id"):
        create_method(f"folder:{tmp_path}")
    (tmp_path / "a.jpg").unlink()
    (tmp_path / "card.yaml").write_text("family: magic\n")
    with pytest.raises(UsageError, match="family"):
        create_method(f"folder:{tmp_path}")
    (tmp_path / "card.yaml").write_text("colour: red\n")
    with pytest.raises(UsageError, match="unknown keys"):
        create_method(f"folder:{tmp_path}")
    (tmp_path / "card.yaml").unlink()
    with pytest.raises(UsageError, match="cannot wrap|cannot be tiled"):
        create_method(f"folder:{tmp_path}", options={"tile": 64})
