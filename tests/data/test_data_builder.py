"""build-dataset end to end on generated photographs: determinism, workers, resume, --force, validate, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from op4ksr_bench.data import builder
from op4ksr_bench.data.commands import build_dataset, validate
from op4ksr_bench.data.manifest import BuiltSuite, validate_suite
from op4ksr_bench.errors import ManifestError, UsageError
from op4ksr_bench.imageio import encode_png

SUITES = ("train", "4ksr-syn", "4ksr-realsquare", "4ksr-realvary")


def _build(data: Path, workers: int = 1, force: bool = False, suite: str = "all", seed=None) -> None:
    build_dataset(suite=suite, sources=[], data=data, limit=None, seed=seed, workers=workers, force=force, div4k=None)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.relative_to(root).parts[0].startswith(".")
    }


def test_builds_every_suite_with_contract_files(tiny_suite_dir, tmp_path):
    data = tmp_path / "data"
    _build(data)
    for name in SUITES:
        suite = BuiltSuite.open(data, name)
        assert suite.entries, name
        assert {p.name for p in suite.root.iterdir()} >= {
            "suite.yaml",
            "suite.json",
            "manifest.jsonl",
            "rejected.jsonl",
        }
        for key in ("name", "version", "variant", "task", "scale", "hr_size", "lr_size", "count", "hash", "built_with"):
            assert key in suite.info
        assert validate_suite(data, name) == []
    syn = BuiltSuite.open(data, "4ksr-syn")
    assert syn.info["variant"] == "uhd" and syn.info["hr_size"] == [320, 192] and syn.info["lr_size"] == [80, 48]
    for entry in syn.entries:
        assert (entry["hr_width"], entry["hr_height"], entry["lr_width"], entry["lr_height"]) == (320, 192, 80, 48)
        assert entry["degradation"]["seed"] > 0 and entry["degradation"]["first"]["jpeg_quality"] >= 30
        assert entry["license"].startswith("see LICENSE")
    train = BuiltSuite.open(data, "train")
    assert all(entry["lr"] is None and entry["hr"] for entry in train.entries)
    vary = BuiltSuite.open(data, "4ksr-realvary")
    for entry in vary.entries:
        assert entry["hr"] is None and entry["lr_width"] % 16 == 0 and entry["lr_height"] % 16 == 0
        assert 0.5 <= entry["lr_width"] / entry["lr_height"] <= 2.0
    photos = [set(BuiltSuite.open(data, name).info["photos"]) for name in SUITES]
    assert sum(len(p) for p in photos) == len(set().union(*photos)), "a photograph was used by two suites"


def test_two_builds_are_byte_identical_across_worker_counts(tiny_suite_dir, tmp_path):
    _build(tmp_path / "one", workers=1)
    _build(tmp_path / "two", workers=2)
    for name in SUITES:
        assert _tree(tmp_path / "one" / name) == _tree(tmp_path / "two" / name), name


def test_validate_names_a_flipped_byte_and_a_missing_file(tiny_suite_dir, tmp_path, capsys):
    data = tmp_path / "data"
    _build(data, suite="4ksr-syn")
    suite = BuiltSuite.open(data, "4ksr-syn")
    lr = suite.lr_path(suite.entries[0])
    raw = bytearray(lr.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    lr.write_bytes(bytes(raw))
    hr = suite.hr_path(suite.entries[-1])
    hr.unlink()
    with pytest.raises(ManifestError, match="2 problems"):
        validate(suite="4ksr-syn", data=data)
    out = capsys.readouterr().out
    assert f"{lr}: altered" in out and f"{hr}: missing" in out


def test_cli_validate_exits_1_naming_the_file(tiny_suite_dir, tmp_path):
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    _build(data, suite="4ksr-realsquare")
    command = [sys.executable, "-m", "op4ksr_bench.cli", "validate", "--suite", "4ksr-realsquare", "--data", str(data)]
    environment = dict(os.environ)
    assert subprocess.run(command, env=environment, capture_output=True, text=True).returncode == 0
    suite = BuiltSuite.open(data, "4ksr-realsquare")
    path = suite.lr_path(suite.entries[0])
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 0xFF]))
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert result.returncode == 1 and f"{path}: altered" in result.stdout
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: validate: 1 problems")


def test_built_suite_is_not_overwritten_without_force(tiny_suite_dir, tmp_path, capsys):
    data = tmp_path / "data"
    _build(data, suite="4ksr-realsquare")
    before = _tree(data / "4ksr-realsquare")
    marker = data / "4ksr-realsquare" / "suite.json"
    marker_mtime = marker.stat().st_mtime_ns
    _build(data, suite="4ksr-realsquare", seed=99)
    captured = capsys.readouterr()
    assert "already built" in captured.err and "pass --force" in captured.err
    assert marker.stat().st_mtime_ns == marker_mtime
    assert _tree(data / "4ksr-realsquare") == before
    _build(data, suite="4ksr-syn", force=True)
    _build(data, suite="4ksr-syn", force=True, seed=99)
    assert BuiltSuite.open(data, "4ksr-syn").spec.seed == 99


def test_killed_build_resumes_and_matches_a_clean_build(tiny_suite_dir, tmp_path, monkeypatch, capsys):
    clean = tmp_path / "clean"
    _build(clean, suite="train")
    original = builder.produce_photo
    calls = {"count": 0}

    def dies_after_one(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] > 1:
            raise KeyboardInterrupt  # what a Ctrl-C or kill looks like from inside the loop
        return original(*args, **kwargs)

    monkeypatch.setattr(builder, "produce_photo", dies_after_one)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _build(resumed, suite="train")
    assert not (resumed / "train").exists(), "a half-built suite must not appear under its final name"
    progress = resumed / ".staging" / "train" / "progress.jsonl"
    assert len(progress.read_text().splitlines()) >= 1
    with open(progress, "a") as handle:
        handle.write('{"id": "torn')  # a line cut by the kill
    monkeypatch.setattr(builder, "produce_photo", original)
    results = []
    monkeypatch.setattr(builder, "finalize_suite", _spy(builder.finalize_suite, results))
    capsys.readouterr()
    _build(resumed, suite="train")
    assert "reused from an interrupted build" in capsys.readouterr().out and results == ["train"]
    assert _tree(resumed / "train") == _tree(clean / "train")
    assert not (resumed / ".staging" / "train").exists()


def _spy(function, sink):
    def wrapper(*args, **kwargs):
        sink.append(args[0].name)
        return function(*args, **kwargs)

    return wrapper


def test_leakage_check_catches_shared_photographs(tiny_suite_dir, tmp_path):
    from op4ksr_bench.data.leakage import leakage_problems

    data = tmp_path / "data"
    _build(data)
    assert leakage_problems(data) == []
    manifest = data / "4ksr-realsquare" / "manifest.jsonl"
    train_entry = json.loads((data / "train" / "manifest.jsonl").read_text().splitlines()[0])
    lines = manifest.read_text().splitlines()
    first = json.loads(lines[0])
    first["source_sha256"] = train_entry["source_sha256"]
    lines[0] = json.dumps(first)
    manifest.write_text("\n".join(lines) + "\n")
    problems = leakage_problems(data)
    assert any("same photograph" in line and first["id"] in line for line in problems)


def test_manifest_paths_may_not_escape(tiny_suite_dir, tmp_path):
    data = tmp_path / "data"
    _build(data, suite="4ksr-realsquare")
    manifest = data / "4ksr-realsquare" / "manifest.jsonl"
    entry = json.loads(manifest.read_text().splitlines()[0])
    entry["lr"] = "../../etc/passwd"
    manifest.write_text(json.dumps(entry) + "\n")
    with pytest.raises(ManifestError, match="must be relative and stay inside"):
        BuiltSuite.open(data, "4ksr-realsquare")


def test_unbuilt_suite_and_bad_arguments_give_one_line(tiny_suite_dir, tmp_path):
    with pytest.raises(ManifestError, match="is not built in .*build-dataset --suite train"):
        BuiltSuite.open(tmp_path / "nothing", "train")
    with pytest.raises(UsageError, match="unknown suite 'trian'.*Did you mean 'train'"):
        _build(tmp_path / "data", suite="trian")
    with pytest.raises(UsageError, match="--workers"):
        _build(tmp_path / "data", workers=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "tiny.png").write_bytes(encode_png(np.full((64, 64, 3), 7, np.uint8)))
    with pytest.raises(ManifestError, match="suite 4ksr-syn: no photograph .* passed"):
        build_dataset(suite="4ksr-syn", sources=[f"folder:{empty}"], data=tmp_path / "d3", limit=None, seed=None,
                      workers=1, force=False, div4k=None)  # fmt: skip
