"""Meta-device cost report and the GPU timing script's code path (dry run on CPU at nano size)."""

from __future__ import annotations

import json

import pytest

from reference_model.cost import cost_report, format_report, main


def test_nano_attention_flops_match_the_closed_form():
    report = cost_report("nano", 256, 512)
    tokens = (256 // 32) * (512 // 32)
    assert report.image_tokens == tokens and report.text_tokens == 8
    sequence = tokens + 8
    width = 2 * 32  # heads x head dim
    layers = 2  # one double-stream + one single-stream block
    assert report.transformer_attention_flops == 4 * sequence**2 * width * layers
    assert report.transformer_flops > report.transformer_attention_flops
    assert report.transformer_peak_activation_bytes > 0 and report.vae_decode_flops > report.vae_encode_flops > 0
    assert "nano at 512x256" in format_report(report)


@pytest.mark.slow
def test_full_size_flux_f16_at_4k_is_about_042_pflop(capsys):
    assert main(["--config", "flux-dev-f16", "--size", "4096", "4096", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_tokens"] == 16384
    assert 11.8e9 < report["transformer_parameters"] < 12.0e9
    assert 0.40e15 < report["transformer_flops"] < 0.44e15
    assert report["transformer_attention_flops"] == 4 * (16384 + 512) ** 2 * 3072 * 57


def test_gpu_timing_script_dry_run_on_cpu(tmp_path):
    import importlib.util
    from pathlib import Path

    import reference_model

    path = Path(reference_model.__file__).parent / "gpu" / "time_4k.py"
    spec = importlib.util.spec_from_file_location("time_4k", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "dry.json"
    args = ["--config", "nano", "--size", "128", "--tile", "96", "--overlap", "32", "--repeats", "1"]
    assert module.main([*args, "--device", "cpu", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["patch_free"]["seconds_median"] > 0 and results["tiled"]["seconds_median"] > 0
