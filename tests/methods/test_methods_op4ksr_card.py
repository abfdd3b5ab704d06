"""The op4ksr card describes the folder it loaded; shipped checkpoints are verified at every load."""

from __future__ import annotations

import shutil

import pytest
import torch

from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.methods import op4ksr
from op4ksr_bench.methods.op4ksr import (
    CHECKPOINT_SHA256,
    DEFAULT_CHECKPOINT,
    Op4ksrMethod,
    checkpoints_dir,
    shipped_checkpoint,
)


def _resave(path):
    """The same tensors written again with a metadata entry: other bytes, same model."""
    from safetensors.torch import load_file, save_file

    save_file(load_file(path), path, metadata={"copy": "test"})


def test_every_shipped_checkpoint_has_recorded_hashes_that_hold():
    folders = sorted(path for path in checkpoints_dir().iterdir() if path.is_dir())
    assert folders, "no checkpoint is shipped"
    for folder in folders:
        card = op4ksr.checkpoint_card(folder)  # raises on a missing record or a changed file
        assert {ref.name.split("/", 1)[1] for ref in card.weights} == set(CHECKPOINT_SHA256[folder.name])


def test_default_card_names_the_loaded_files():
    method = Op4ksrMethod()
    assert method.card == Op4ksrMethod.card  # the default checkpoint's files and hashes, as listed
    assert method.card.licence == "Apache-2.0" and not method.card.non_commercial


def test_another_folder_gets_its_own_card(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(shipped_checkpoint(), folder)
    _resave(folder / "prompt_embeddings.safetensors")
    method = Op4ksrMethod(weights=str(folder))
    prompt = next(ref for ref in method.card.weights if ref.name.endswith("prompt_embeddings.safetensors"))
    assert prompt.sha256 != CHECKPOINT_SHA256[DEFAULT_CHECKPOINT]["prompt_embeddings.safetensors"]
    assert method.card.licence.startswith("unknown")
    assert method.upscale(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_a_changed_or_unrecorded_shipped_checkpoint_is_refused(tmp_path, monkeypatch):
    shipped = tmp_path / "checkpoints"
    shutil.copytree(shipped_checkpoint(), shipped / DEFAULT_CHECKPOINT)
    monkeypatch.setattr(op4ksr, "checkpoints_dir", lambda: shipped.resolve())
    _resave(shipped / DEFAULT_CHECKPOINT / "vae" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(WeightsMissingError, match="is not the recorded"):
        Op4ksrMethod()
    shutil.copytree(shipped_checkpoint(), shipped / "other")
    with pytest.raises(WeightsMissingError, match="without recorded hashes"):
        Op4ksrMethod(weights=str(shipped / "other"))
