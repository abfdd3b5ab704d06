"""The ablation harness: arm arguments (placeholders filled from the committed sweep and gradient ratio), a tiny
train -> evaluate -> raw JSON run (held-out crops and whole images of a 4K-style suite), the inference-only RFR
sweep, the gradient-ratio measurement, and the page regenerated from raw files alone."""

from __future__ import annotations

import json

import pytest

from op4ksr_bench.errors import UsageError
from reference_model import ablation

from .conftest import write_tiny_suite

TINY = ["crop_size=64", "batch_size=2", "validation_crop_size=128", "validation_count=2", "ap_periods=[16]",
        "validate_every=2", "checkpoint_every=2", "log_every=1", "warmup_steps=1"]  # fmt: skip


def test_arm_arguments_use_28_frequency_pairs_and_fill_placeholders_from_raw_files(tmp_path):
    raw, runs = tmp_path / "raw", tmp_path / "runs"
    arguments = ablation.train_arguments("rfr-base", 2, None, 10, runs, ["crop_size=64"])
    text = " ".join(arguments)
    assert "--config cpu-skip-pf" in text and "--seed 2" in text and f"--out {runs / 'rfr-base-s2'}" in text
    assert "max_steps=10" in text and arguments[-1] == "crop_size=64"  # extra overrides come last
    transformer = json.loads(next(a for a in arguments if a.startswith("model.transformer=")).split("=", 1)[1])
    assert transformer["axes_dims_rope"] == [8, 28, 28] and transformer["attention_head_dim"] == 64
    fine = ablation.arm_overrides("ft-none", 1, runs, raw)
    assert fine["init_from"] == f"{runs.as_posix()}/rfr-base-s1/final" and fine["crop_size"] == 256
    assert ablation.arm_overrides("skip-off", 0, runs, raw)["model.bicubic_skip"] is False
    with pytest.raises(UsageError, match="grad-ratio.json is missing"):
        ablation.arm_overrides("ap-low", 0, runs, raw)
    with pytest.raises(UsageError, match="no RFR sweep"):
        ablation.arm_overrides("ft-rfr", 0, runs, raw)
    raw.mkdir()
    (raw / "grad-ratio.json").write_text(json.dumps({"ratio": 0.5}))
    assert ablation.arm_overrides("ap-low", 0, runs, raw)["ap_weight"] == pytest.approx(0.2)  # 10 % / 0.5
    assert ablation.arm_overrides("ap-high", 0, runs, raw)["ap_weight"] == pytest.approx(0.6)
    rows = [{"mode": m, "scale": s, "size": size, "image": "a", "psnr": 20.0, "pas": 0.0, "dpas": d}
            for m, s, d in (("none", 1.0, 0.001), ("base", 8.0, 0.03), ("ntk", 2.0, -0.002), ("pi", 2.0, 0.004))
            for size in (512, 4096)]  # fmt: skip
    (raw / "rfr-sweep-s0.json").write_text(json.dumps({"seed": 0, "rows": rows}))
    assert ablation.best_rfr(raw) == ("ntk", 2.0)  # smallest |dPAS| at the largest size, RFR off excluded
    filled = ablation.arm_overrides("ft-rfr", 0, runs, raw)
    assert filled["model.rfr_mode"] == "ntk" and filled["model.rfr_scale"] == 2.0
    with pytest.raises(UsageError, match="unknown arm"):
        ablation.arm_overrides("ap-huge")
    plan = ablation.plan()
    assert plan.index("python -m reference_model.ablation grad-ratio") < plan.index(
        "python -m reference_model.ablation train --arm ap-low --seed 0"
    )


def test_tiny_arms_train_fine_tune_evaluate_sweep_and_report(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ablation, "SUITE", "tiny-syn")
    write_tiny_suite(tiny_data, name="tiny-syn", count=2, size=128, with_lr=True)
    runs, raw, doc = tmp_path / "runs", tmp_path / "raw", tmp_path / "doc" / "ablation.md"
    sets = [item for value in TINY for item in ("--set", value)]
    common = ["--seed", "0", "--data", str(tiny_data), "--runs", str(runs)]
    assert ablation.main(["train", "--arm", "rfr-base", *common, "--max-steps", "2", *sets]) == 0
    path = ablation.evaluate_arm("rfr-base", 0, tiny_data, runs, raw_dir=raw, suite="tiny-syn")
    payload = json.loads(path.read_text())
    assert payload["arm"] == "rfr-base" and payload["steps"] == 2 and len(payload["heldout"]) == 2
    assert set(payload["fourk"]) == {"img000", "img001"} and set(payload["fourk"]["img000"]) == {"psnr", "pas", "dpas"}
    assert payload["model"]["skip_prefilter"] == 3 and payload["model"]["transformer"]["axes_dims_rope"] == [8, 28, 28]
    # the gradient ratio on the base model, then an L_AP arm fine-tuned from it with the derived weight
    monkeypatch.setattr(ablation, "LARGE", {**ablation.LARGE, "crop_size": 128, "batch_size": 1})
    ratio = json.loads(ablation.grad_ratio(tiny_data, runs, raw_dir=raw, batches=2).read_text())
    assert ratio["ratio"] > 0 and len(ratio["batches"]) == 2 and ratio["weights"]["ap_low"] > 0
    assert ablation.main(["train", "--arm", "ap-low", *common, "--raw", str(raw), "--max-steps", "2", *sets]) == 0
    config = (runs / "ap-low-s0" / "config.yaml").read_text()
    assert f"ap_weight: {ratio['weights']['ap_low']}" in config and "rfr-base-s0/final" in config
    ablation.evaluate_arm("ap-low", 0, tiny_data, runs, raw_dir=raw, suite="tiny-syn")
    sweep = json.loads(ablation.rfr_sweep(0, tiny_data, runs, sizes=(64, 128), raw_dir=raw).read_text())
    assert {(r["mode"], r["scale"]) for r in sweep["rows"]} == set(ablation.RFR_SWEEP)
    assert {r["tokens_per_side"] for r in sweep["rows"]} == {2, 4}
    small = {**ablation.COMMON, "validation_crop_size": 128, "validation_count": 2}
    monkeypatch.setattr(ablation, "COMMON", small)
    reference = json.loads(ablation.bicubic_reference(0, tiny_data, raw_dir=raw, suite="tiny-syn").read_text())
    assert reference["arm"] == "bicubic" and set(reference["heldout"]) == set(payload["heldout"])
    assert set(reference["fourk"]) == set(payload["fourk"])  # the same crops and images as the arms
    page = ablation.report(raw_dir=raw, doc=doc, plot_dir=doc.parent / "plots").read_text()
    assert "| rfr-base | 1 | 2 |" in page and "| ap-low | 1 | 2 |" in page and "Incomplete: arms" in page
    assert page.index("| bicubic | 1 | 0 |") < page.index("| rfr-base | 1 | 2 |")
    assert "pi s=2 |" in page and "||grad L_AP|| / ||grad L2||" in page
    for name in ("train-l2", "rfr-sweep-psnr", "rfr-sweep-pas", "rfr-sweep-dpas"):
        assert (doc.parent / "plots" / f"{name}.svg").read_text().startswith("<svg")


def fake_payload(arm: str, seed: int, dpas: float, psnr: float = 25.0) -> dict:
    rows = {f"img{i}": {"psnr": psnr + i + seed, "pas": 0.1 + dpas, "dpas": dpas + 0.001 * i} for i in range(4)}
    return {"arm": arm, "seed": seed, "steps": 100, "overrides": {}, "train_log": [], "heldout": rows,
            "fourk": rows}  # fmt: skip


def test_report_is_regenerated_from_raw_files_alone(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = {arm: (0.02, 25.0) for arm in ablation.ARMS}
    settings.update({"skip-off": (0.02, 20.0), "ap-low": (0.01, 25.0)})
    for arm, (dpas, psnr) in settings.items():
        for seed in ablation.SEEDS:
            (raw / f"{arm}-s{seed}.json").write_text(json.dumps(fake_payload(arm, seed, dpas, psnr)))
    sweep = [
        {"mode": mode, "scale": scale, "size": size, "tokens_per_side": size // 32, "image": image, "psnr": 20.0,
         "pas": 0.01 * size / 512, "dpas": 0.01 * size / 512 * (0.5 if mode == "ntk" else 1.0)}
        for mode, scale in (("none", 1.0), ("ntk", 8.0))
        for size in (512, 1024)
        for image in ("a", "b", "c")
    ]  # fmt: skip
    (raw / "rfr-sweep-s0.json").write_text(json.dumps({"seed": 0, "rows": sweep}))
    ratio = {"seed": 0, "ratio": 0.25, "batch_size": 4, "crop_size": 256, "batches": [{}] * 8,
             "weights": {"ap_low": 0.4, "ap_high": 1.2}}  # fmt: skip
    (raw / "grad-ratio.json").write_text(json.dumps(ratio))
    doc = tmp_path / "ablation.md"
    first = ablation.report(raw_dir=raw, doc=doc, plot_dir=tmp_path / "plots").read_text()
    assert "| ap-low | 3 | 100, 100, 100 |" in first and "| 0 +- 0 | -0.01 +- " in first
    assert "`ap-low` does not change PSNR on held-out crops against `ft-none`" in first
    assert "and lowers dPAS (-0.01000" in first and "`ap-high` does not change PSNR" in first
    assert "`skip-off` lowers PSNR at 4K against `rfr-base` (paired mean -5.000 dB" in first
    assert "RFR `ntk` s=8 at inference only, 1024 px: lowers |dPAS| against RFR off" in first
    assert "Incomplete" not in first and "`ap_weight` 0.4 (`ap-low`)" in first
    assert "<polyline" in (tmp_path / "plots" / "rfr-sweep-pas.svg").read_text()
    assert ablation.report(raw_dir=raw, doc=doc, plot_dir=tmp_path / "plots").read_text() == first  # reproducible


def test_committed_page_and_plots_are_what_the_committed_raw_results_give(tmp_path):
    """docs/reference_model/ablation.md and its plots are regenerated from the committed raw files, unedited."""
    if not ablation.RAW_DIR.is_dir():
        pytest.fail(f"{ablation.RAW_DIR} is missing: the ablation page must come with its raw results")
    doc = tmp_path / "ablation.md"
    page = ablation.report(raw_dir=ablation.RAW_DIR, doc=doc, plot_dir=tmp_path / "ablation" / "plots").read_text()
    assert page == (ablation.DOC_DIR / "ablation.md").read_text()
    for plot in sorted((tmp_path / "ablation" / "plots").iterdir()):
        assert plot.read_text() == (ablation.PLOT_DIR / plot.name).read_text(), plot.name
