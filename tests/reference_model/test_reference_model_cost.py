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


def test_gpu_timing_script_dry_run_on_cpu(tmp_path, capsys):
    """The timing script's whole path at tiny size on CPU: the benchmark's method, bf16, tiled alongside, FLOPs
    from cost.py and the H20 scaling (with a peak given by hand, as for a GPU missing from the table)."""
    import importlib.util
    from pathlib import Path

    import reference_model

    path = Path(reference_model.__file__).parent / "gpu" / "time_4k.py"
    spec = importlib.util.spec_from_file_location("time_4k", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dense_bf16_peak("NVIDIA H200")[0] == 989.0 and module.dense_bf16_peak("NVIDIA H20")[0] == 148.0
    assert module.dense_bf16_peak("NVIDIA H100 PCIe")[0] == 756.0 and module.dense_bf16_peak("cpu") is None
    out = tmp_path / "dry.json"
    args = ["--config", "nano", "--size", "128", "--tile", "96", "--overlap", "32", "--repeats", "2"]
    assert module.main([*args, "--device", "cpu", "--peak-tflops", "296", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["dtype"] == "bfloat16" and results["tiles"] == 4 and results["paper_seconds_h20"] == 5.75
    for mode in ("patch_free", "tiled"):
        entry = results[mode]
        assert len(entry["seconds_all"]) == 2 and entry["seconds_median"] > 0 and entry["flops"]["total"] > 0
        assert entry["achieved_tflops"] == pytest.approx(entry["flops"]["total"] / entry["seconds_median"] / 1e12)
        assert entry["h20_estimate_seconds"] == pytest.approx(entry["seconds_median"] * 2)  # 296 / 148
    assert results["tiled"]["flops"]["total"] > results["patch_free"]["flops"]["total"]  # overlap is extra work
    assert "H20 estimate" in capsys.readouterr().out
    assert module.main([*args, "--size", "100", "--device", "cpu"]) == 2  # not a multiple of 32
