"""The ablation harness: arm arguments, a tiny train -> evaluate -> raw JSON run, and the page regenerated from
raw files alone (tables, paired differences, plots, verdict)."""

from __future__ import annotations

import json

import pytest

from reference_model import ablation


def test_arm_arguments_use_28_frequency_pairs_and_the_arm_settings(tmp_path):
    arguments = ablation.train_arguments("ap-high", 2, None, 10, tmp_path, ["crop_size=64"])
    text = " ".join(arguments)
    assert "--seed 2" in text and f"--out {tmp_path / 'ap-high-s2'}" in text and "max_steps=10" in text
    transformer = json.loads(next(a for a in arguments if a.startswith("model.transformer=")).split("=", 1)[1])
    assert transformer["axes_dims_rope"] == [8, 28, 28] and transformer["attention_head_dim"] == 64
    assert "ap_weight=0.03" in arguments and arguments[-1] == "crop_size=64"  # extra overrides come last
    with pytest.raises(Exception, match="unknown arm"):
        ablation.arm_overrides("ap-huge")


def test_tiny_arm_trains_evaluates_and_reports(tiny_data, tmp_path):
    runs, raw, doc = tmp_path / "runs", tmp_path / "raw", tmp_path / "doc" / "ablation.md"
    tiny = ["crop_size=64", "batch_size=2", "validation_crop_size=128", "validation_count=2", "ap_periods=[16]",
            "validate_every=2", "checkpoint_every=2", "log_every=1", "warmup_steps=1"]  # fmt: skip
    sets = [item for value in tiny for item in ("--set", value)]
    base = ["--arm", "ap-low", "--seed", "0", "--data", str(tiny_data), "--runs", str(runs)]
    assert ablation.main(["train", *base, "--max-steps", "2", *sets]) == 0
    path = ablation.evaluate_arm("ap-low", 0, tiny_data, runs, raw_dir=raw)
    payload = json.loads(path.read_text())
    assert payload["arm"] == "ap-low" and payload["steps"] == 2 and len(payload["heldout"]) == 2
    assert set(next(iter(payload["heldout"].values()))) == {"psnr", "pas", "dpas"}
    page = ablation.report(raw_dir=raw, doc=doc, plot_dir=doc.parent / "plots").read_text()
    assert "| ap-low | 1 | 2 |" in page and "No verdict" in page
    assert (doc.parent / "plots" / "train-l2.svg").read_text().startswith("<svg")


def fake_payload(arm: str, seed: int, dpas: float) -> dict:
    heldout = {f"img{i}": {"psnr": 25.0 + i + seed, "pas": 0.1 + dpas, "dpas": dpas + 0.001 * i} for i in range(4)}
    return {"arm": arm, "seed": seed, "steps": 100, "overrides": {}, "train_log": [], "heldout": heldout}


def test_report_is_regenerated_from_raw_files_alone(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for arm, dpas in (("rfr-base", 0.02), ("ap-0", 0.02), ("ap-low", 0.01), ("ap-high", 0.02)):
        for seed in ablation.SEEDS:
            (raw / f"{arm}-s{seed}.json").write_text(json.dumps(fake_payload(arm, seed, dpas)))
    sweep = [
        {"mode": mode, "scale": 4.0, "size": size, "tokens_per_side": size // 32, "image": "a", "psnr": 20.0,
         "pas": 0.01 * size / 512, "dpas": 0.0}
        for mode in ("none", "ntk")
        for size in (512, 1024)
    ]  # fmt: skip
    (raw / "rfr-sweep-s0.json").write_text(json.dumps({"seed": 0, "rows": sweep}))
    doc = tmp_path / "ablation.md"
    first = ablation.report(raw_dir=raw, doc=doc, plot_dir=tmp_path / "plots").read_text()
    assert "| ap-low | 3 | 100, 100, 100 |" in first and "| 0 +- 0 vs ap-0 | -0.01 +- " in first
    assert "ap-low lowers dPAS relative to ap-0" in first and "ap-high does not change dPAS" in first
    assert "4 sweep rows" in first
    assert "<polyline" in (tmp_path / "plots" / "rfr-sweep-pas.svg").read_text()
    assert ablation.report(raw_dir=raw, doc=doc, plot_dir=tmp_path / "plots").read_text() == first  # reproducible
