"""Item 2: no pickled code runs from a weight file, and ``weights import`` never damages what is installed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from op4ksr_bench import weights
from op4ksr_bench.errors import Op4ksrError
from op4ksr_bench.metrics.learned import load_checkpoint, offline_loading
from op4ksr_bench.weights import WeightFile, WeightsRejectedError
from op4ksr_bench.weights import commands as weight_commands


@pytest.fixture
def hashed_entry(monkeypatch, tmp_path):
    """A catalogue entry with a published sha256 and size (like niqe-pris-params), and its good bytes."""
    good = b"good weights " * 100
    item = WeightFile(
        name="test-hashed", filename="test_hashed.bin", root="op4ksr", sha256=hashlib.sha256(good).hexdigest(),
        size=len(good), licence="test", source="test",
    )  # fmt: skip
    monkeypatch.setitem(weights.CATALOGUE, item.name, item)
    return item, good


def test_import_of_a_pickled_payload_without_published_hash_is_refused_and_runs_nothing(tmp_path, tools):
    marker = tmp_path / "PWNED"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    tools.pickled_payload(bundle / "ckpt_koniq10k.pt", marker)
    with pytest.raises(Op4ksrError, match="not a plain tensor checkpoint"):
        weight_commands.cli_import(bundle)
    assert not marker.exists() and not weights.is_present("maniqa-koniq")
    assert not [p for p in weights.weight_path("maniqa-koniq").parent.glob(".tmp-*")]


def test_a_planted_pickled_checkpoint_never_runs_when_a_metric_loads_it(tmp_path, tools):
    """The probe: a file put in place by hand (no import), then ``score --metrics maniqa``."""
    from op4ksr_bench.metrics.scoring import create_metrics

    marker = tmp_path / "PWNED"
    path = weights.weight_path("maniqa-koniq")
    path.parent.mkdir(parents=True, exist_ok=True)
    tools.pickled_payload(path, marker)
    with pytest.raises(WeightsRejectedError, match="not a plain tensor checkpoint, refused"):
        create_metrics(["maniqa"], default_names=(), crop_border=0, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("torch_format", [True, False])
def test_load_checkpoint_never_unpickles_code(tmp_path, tools, torch_format):
    """DISTS, MUSIQ, MANIQA and TOPIQ all load through ``load_checkpoint``."""
    marker = tmp_path / "PWNED"
    path = tools.pickled_payload(tmp_path / "x.pth", marker, torch_format=torch_format)
    with pytest.raises(WeightsRejectedError, match="not a plain tensor checkpoint"):
        load_checkpoint(torch.nn.Linear(2, 2), path, strict=True)
    assert not marker.exists()


def test_load_checkpoint_loads_a_plain_state_dict_and_safetensors(tmp_path):
    import safetensors.torch

    model = torch.nn.Linear(2, 2)
    torch.save({"params": {"module." + k: v for k, v in model.state_dict().items()}}, tmp_path / "a.pth")
    copy = torch.nn.Linear(2, 2)
    load_checkpoint(copy, tmp_path / "a.pth", strict=True, weight_keys="params")
    assert torch.equal(copy.weight, model.weight)
    safetensors.torch.save_file(model.state_dict(), str(tmp_path / "b.safetensors"))
    other = torch.nn.Linear(2, 2)
    load_checkpoint(other, tmp_path / "b.safetensors", strict=True)
    assert torch.equal(other.bias, model.bias)


def test_every_torch_load_while_building_a_model_is_tensors_only(tmp_path, tools):
    """pyiqa's loader and torch.hub's (torchvision backbones) pass weights_only=False; it is overridden."""
    marker = tmp_path / "PWNED"
    path = tools.pickled_payload(tmp_path / "vgg16-397923af.pth", marker)
    original = torch.load
    with offline_loading(), pytest.raises(Exception, match="Weights only load failed|Unsupported"):
        torch.load(path, map_location="cpu", weights_only=False)
    assert not marker.exists()
    assert torch.load is original  # the override ends with the block


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("musiq-koniq", "does not start with e95806b9"),
        ("topiq-nr-koniq", "does not start with 9a73138b"),
        ("dists", "!= f5e65c96230b"),
        ("torchvision-vgg16", "!= 397923af8e79"),
        ("torchvision-alexnet", "!= 7be5be791159"),
        ("clip-rn50", "!= afeb0e10f9e5"),
    ],
)
def test_a_file_without_its_catalogue_hash_is_refused_at_load(name, message, tmp_path):
    path = weights.weight_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsRejectedError, match=message):
        weights.require_verified(name)


def test_hash_is_checked_at_load_not_only_at_import(hashed_entry, tmp_path):
    item, good = hashed_entry
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / item.filename).write_bytes(good)
    weight_commands.cli_import(tmp_path / "bundle")
    assert weights.require_verified(item.name) == weights.weight_path(item.name)
    altered = bytearray(good)
    altered[0] ^= 1
    weights.weight_path(item.name).write_bytes(bytes(altered))
    with pytest.raises(WeightsRejectedError, match="fail their check"):
        weights.require_verified(item.name)


def test_an_entry_without_published_hash_is_pinned_at_import_and_checked_at_load(tmp_path):
    (tmp_path / "bundle").mkdir()
    torch.save({"weight": torch.zeros(3)}, tmp_path / "bundle" / "ckpt_koniq10k.pt")
    weight_commands.cli_import(tmp_path / "bundle")
    assert weights.pinned_sha256("maniqa-koniq") == weights.sha256_file(weights.weight_path("maniqa-koniq"))
    weights.require_verified("maniqa-koniq")
    torch.save({"weight": torch.ones(3)}, weights.weight_path("maniqa-koniq"))  # swapped behind our back
    with pytest.raises(WeightsRejectedError, match="recorded at import"):
        weights.require_verified("maniqa-koniq")


def test_a_wrong_file_never_replaces_the_installed_good_one(hashed_entry, tmp_path):
    item, good = hashed_entry
    for name, data in (("good", good), ("bad", b"x" * len(good))):
        (tmp_path / name).mkdir()
        (tmp_path / name / item.filename).write_bytes(data)
    weight_commands.cli_import(tmp_path / "good")
    with pytest.raises(Op4ksrError, match="does not match catalogue entry test-hashed"):
        weight_commands.cli_import(tmp_path / "bad")
    assert weights.weight_path(item.name).read_bytes() == good
    assert not list(weights.weight_path(item.name).parent.glob(".tmp-*"))


@pytest.mark.parametrize("entry_name", ["niqe-pris-params", "maniqa-koniq"])
def test_a_huge_sparse_file_is_refused_before_it_is_copied(tmp_path, entry_name):
    filename = Path(weights.entry(entry_name).filename).name
    (tmp_path / "bundle").mkdir()
    with open(tmp_path / "bundle" / filename, "wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB, no blocks on disk
    with pytest.raises(Op4ksrError, match="does not match"):
        weight_commands.cli_import(tmp_path / "bundle")
    folder = weights.weight_path(entry_name).parent
    assert not folder.exists() or not any(folder.iterdir())  # nothing copied, not even a temporary file


def test_import_refuses_symlinks(hashed_entry, tmp_path):
    item, good = hashed_entry
    (tmp_path / "real.bin").write_bytes(good)
    (tmp_path / "bundle").mkdir()
    os.symlink(tmp_path / "real.bin", tmp_path / "bundle" / item.filename)
    with pytest.raises(Op4ksrError, match="is a symbolic link"):
        weight_commands.cli_import(tmp_path / "bundle")
    assert not weights.is_present(item.name)


def test_an_installed_symlink_is_refused_at_load(hashed_entry, tmp_path):
    item, good = hashed_entry
    (tmp_path / "real.bin").write_bytes(good)
    weights.weight_path(item.name).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "real.bin", weights.weight_path(item.name))
    with pytest.raises(WeightsRejectedError, match="symbolic link"):
        weights.require_verified(item.name)


def test_good_files_are_imported_even_when_another_is_refused(hashed_entry, tmp_path, tools):
    item, good = hashed_entry
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / item.filename).write_bytes(good)
    tools.pickled_payload(tmp_path / "bundle" / "ckpt_koniq10k.pt", tmp_path / "PWNED")
    with pytest.raises(Op4ksrError, match=r"not imported: .*ckpt_koniq10k.pt.*\(1 other file\(s\) imported\)"):
        weight_commands.cli_import(tmp_path / "bundle")
    assert weights.weight_path(item.name).read_bytes() == good and not (tmp_path / "PWNED").exists()


def test_spandrel_weights_with_pickled_code_are_refused_in_one_line(tmp_path, tools):
    """``spandrel:PATH`` goes through spandrel's restricted unpickler; a payload is a UsageError, not a traceback."""
    from op4ksr_bench.errors import UsageError
    from op4ksr_bench.methods.spandrel_method import load_descriptor

    marker = tmp_path / "PWNED"
    path = tools.pickled_payload(tmp_path / "model.pth", marker)
    with pytest.raises(UsageError, match="cannot load with spandrel .*forbidden"):
        load_descriptor(path, "cpu", "float32", "spandrel:model.pth")
    assert not marker.exists()
