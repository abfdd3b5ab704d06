"""The weights catalogue and `op4ksr-bench weights list|verify|fetch|import`."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from op4ksr_bench import weights
from op4ksr_bench.cli import app
from op4ksr_bench.errors import Op4ksrError, WeightsMissingError
from op4ksr_bench.weights import commands as weight_commands
from op4ksr_bench.weights import fetchers as weight_fetchers


def run(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


@pytest.mark.parametrize("name", weights.CATALOGUE.names())
def test_every_catalogue_entry_resolves_to_its_own_weight_file(name):
    item = weights.CATALOGUE.get(name)
    assert isinstance(item, weights.WeightFile) and item.name == name
    assert item.sha256 is None or len(item.sha256) == 64
    assert item.fetcher is None or callable(item.fetcher)


def test_every_weight_file_a_metric_or_method_names_is_catalogued():
    from op4ksr_bench.methods import METHODS
    from op4ksr_bench.metrics import metric_classes

    named = {file for cls in metric_classes() for file in cls.weights}
    for method in METHODS.names():
        card = METHODS.get(method).card
        if method != "op4ksr":  # ships its nano checkpoint in the repository (methods/commands.shipped_status)
            named |= {reference.name for reference in card.weights}
    assert sorted(named - set(weights.CATALOGUE.names())) == []
    assert sorted(set(weights.CATALOGUE.names()) - named) == []  # nothing catalogued that nothing uses


def test_catalogue_entries_name_a_destination_and_a_source():
    from op4ksr_bench.weights.commands import used_by

    for item in weights.entries():
        assert item.licence and item.source and used_by(item.name)
        path = weights.weight_path(item.name)
        assert path.name == item.filename.split("/")[-1]
    assert str(weights.weight_path("musiq-koniq")).endswith("torch/hub/pyiqa/musiq_koniq_ckpt-e95806b9.pth")
    assert weights.entry("torchvision-vgg16").sha256_prefix == "397923af"


def test_require_raises_one_line_naming_file_and_place():
    with pytest.raises(WeightsMissingError) as error:
        weights.require("dists")
    message = str(error.value)
    assert "\n" not in message and "DISTS_weights-f5e65c96.pth" in message and "hub/pyiqa" in message


def test_niqe_mat_is_what_pyiqa_reads_and_byte_reproducible():
    rng = np.random.default_rng(0)
    mu, cov = rng.random((1, 36)), np.eye(36)
    first, second = weight_fetchers.niqe_mat_bytes(mu, cov), weight_fetchers.niqe_mat_bytes(mu, cov)
    assert first == second
    loaded = scipy.io.loadmat(io.BytesIO(first))
    np.testing.assert_array_equal(np.ravel(loaded["mu_prisparam"]), mu.ravel())
    np.testing.assert_array_equal(loaded["cov_prisparam"], cov)


def test_list_shows_every_entry_and_its_state():
    result = run("weights", "list")
    assert result.exit_code == 0
    for name in weights.CATALOGUE:
        assert name in result.output
    assert "MISSING" in result.output and "non-commercial" in result.output


def test_import_copies_and_verifies_then_verify_detects_alteration(tmp_path):
    folder = tmp_path / "bundle" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    (folder / "niqe_modelparameters.mat").write_bytes(weight_fetchers.niqe_mat_bytes(rng.random((1, 36)), np.eye(36)))
    (folder / "musiq_koniq_ckpt-e95806b9.pth").write_bytes(b"not the real checkpoint")
    result = run("weights", "import", str(tmp_path / "bundle"))
    # the NIQE file has a known sha256 and this one differs: refused, nothing left behind
    assert result.exit_code != 0 and "does not match" in str(result.exception)
    assert not weights.is_present("niqe-pris-params")
    (folder / "niqe_modelparameters.mat").unlink()
    with pytest.raises(Op4ksrError, match="does not start with e95806b9"):
        weight_commands.cli_import(tmp_path / "bundle")
    assert not weights.is_present("musiq-koniq")


def test_import_accepts_files_without_a_published_hash_and_verify_reports(tmp_path):
    import torch

    torch.save({"weight": torch.zeros(2)}, tmp_path / "ckpt_koniq10k.pt")  # a plain tensor checkpoint
    weight_commands.cli_import(tmp_path)
    assert weights.is_present("maniqa-koniq")
    ok, detail = weights.verify("maniqa-koniq")
    assert ok and "no published hash" in detail
    result = run("weights", "verify")
    assert result.exit_code == 0 and "maniqa-koniq" in result.output


def test_fetch_refuses_entries_without_a_fetcher():
    result = run("weights", "fetch", "dists")
    assert result.exit_code != 0 and "cannot be fetched here" in str(result.exception)
