"""Item 3: ``run`` refuses or labels a suite that does not verify; external methods never touch suite files."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import typer
import yaml

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.data.manifest import BuiltSuite, manifest_line, suite_hash
from op4ksr_bench.errors import ManifestError
from op4ksr_bench.imageio import read_image, write_png
from op4ksr_bench.results import read_samples


def _rehash(root) -> None:
    """Make ``suite.json`` agree with an edited manifest (what an attacker who edits both does)."""
    info = json.loads((root / "suite.json").read_text())
    info["hash"] = suite_hash((root / "suite.yaml").read_bytes(), (root / "manifest.jsonl").read_bytes())
    (root / "suite.json").write_text(json.dumps(info))


def test_altered_lr_pixels_fail_that_image_with_one_line_naming_the_file(bench, tools):
    root = bench["suite"]()
    lr = read_image(root / "lr" / "img001.png")
    lr[0, 0] = 255 - lr[0, 0]
    write_png(root / "lr" / "img001.png", lr)
    with pytest.raises(typer.Exit):
        tools.run_bicubic()
    folder = tools.run_folder(bench["results"])
    rows = {row["id"]: row for row in read_samples(folder / "samples.jsonl")}
    assert rows["img001"]["status"] == "failed" and rows["img001"]["output"] is None
    assert rows["img001"]["reason"].startswith(f"input: {root / 'lr' / 'img001.png'}: altered since the build")
    assert "\n" not in rows["img001"]["reason"]
    assert rows["img000"]["status"] == rows["img002"]["status"] == "ok"
    assert not (folder / "images" / "img001.png").exists()


def test_altered_hr_fails_that_image_instead_of_scoring_against_it(bench, tools):
    root = bench["suite"]()
    (root / "hr" / "img002.png").write_bytes((root / "hr" / "img000.png").read_bytes())
    with pytest.raises(typer.Exit):
        tools.run_bicubic()
    rows = {row["id"]: row for row in read_samples(tools.run_folder(bench["results"]) / "samples.jsonl")}
    assert rows["img002"]["status"] == "failed" and "hr/img002.png: altered since the build" in rows["img002"]["reason"]
    assert rows["img002"]["metrics"] == {}


@pytest.mark.parametrize("edit", ["scale", "manifest"])
def test_an_edited_suite_never_runs_under_the_built_hash(bench, tools, edit):
    root = bench["suite"]()
    if edit == "scale":
        spec = yaml.safe_load((root / "suite.yaml").read_text())
        spec["scale"] = 2
        (root / "suite.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    else:  # an attacker swaps an LR and updates its hash in the manifest
        write_png(root / "lr" / "img000.png", np.zeros((12, 16, 3), np.uint8))
        entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
        entries[0]["lr_sha256"] = sha256_file(root / "lr" / "img000.png")
        (root / "manifest.jsonl").write_text("".join(manifest_line(entry) + "\n" for entry in entries))
    with pytest.raises(ManifestError, match="changed since the build .*rebuild with --force"):
        tools.run_bicubic()
    assert not bench["results"].exists()


def test_an_edited_suite_with_a_recomputed_hash_is_a_different_suite(bench, tools):
    """Editing suite.json too yields a new hash: results never carry the clean suite's identity."""
    root = bench["suite"]()
    clean_hash = json.loads((root / "suite.json").read_text())["hash"]
    tools.run_bicubic()
    write_png(root / "lr" / "img000.png", np.zeros((12, 16, 3), np.uint8))
    entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    entries[0]["lr_sha256"] = sha256_file(root / "lr" / "img000.png")
    (root / "manifest.jsonl").write_text("".join(manifest_line(entry) + "\n" for entry in entries))
    _rehash(root)
    tools.run_bicubic()
    folders = sorted(path for path in (bench["results"] / "tiny@v1" / "bicubic").iterdir() if path.is_dir())
    hashes = {json.loads((folder / "run.json").read_text())["suite"]["hash"] for folder in folders}
    assert len(folders) == 2 and clean_hash in hashes and len(hashes) == 2


def test_duplicate_ids_are_an_error(bench, tools):
    bench["suite"](hook=lambda entries: entries.append(dict(entries[0])))
    with pytest.raises(ManifestError, match=r"manifest.jsonl:4: image id 'img000' repeats line 1"):
        BuiltSuite.open(bench["data"], "tiny")
    with pytest.raises(ManifestError, match="repeats line 1"):
        tools.run_bicubic()
    assert not bench["results"].exists()


def test_validate_still_lists_every_problem(bench):
    """``validate`` keeps reporting altered files one per line (the run-time checks do not replace it)."""
    from op4ksr_bench.data.manifest import validate_suite

    root = bench["suite"]()
    (root / "lr" / "img001.png").write_bytes((root / "lr" / "img000.png").read_bytes())
    assert validate_suite(bench["data"], "tiny") == [
        f"{root / 'lr' / 'img001.png'}: altered (sha256 differs from the manifest)"
    ]


def _rewriting_card(tmp_path):
    """A baseline whose script overwrites its inputs in place, then writes 4x nearest-neighbour outputs."""
    script = tmp_path / "rewrite.py"
    script.write_text(
        "import sys, pathlib\n"
        "from PIL import Image\n"
        "inp, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "for path in sorted(inp.glob('*.png')):\n"
        "    image = Image.open(path).convert('RGB')\n"
        "    image.resize((image.width * 4, image.height * 4), Image.NEAREST).save(out / path.name)\n"
        "    with open(path, 'r+b') as handle:\n"
        "        handle.write(b'CORRUPTED BY THE BASELINE')\n"
    )
    card = tmp_path / "rewrite.yaml"
    card.write_text(yaml.safe_dump({
        "name": "rewrite", "display_name": "rewrite", "repository": "local", "licence": "MIT", "backbone": "none",
        "family": "regression", "steps": 1, "patch_free": True, "workdir": str(tmp_path),
        "command": f"{{python}} {script} {{input_dir}} {{output_dir}}", "output": "{id}.png",
    }))  # fmt: skip
    return card


def test_external_methods_get_copies_never_links_into_the_suite(bench, tools):
    root = bench["suite"]()
    before = {path.name: path.read_bytes() for path in (root / "lr").iterdir()}
    card = _rewriting_card(bench["tmp"])
    tools.run_bicubic(method=f"external:{card}", opts=[f"python={sys.executable}"])
    assert {path.name: path.read_bytes() for path in (root / "lr").iterdir()} == before
    assert all(os.stat(path).st_nlink == 1 for path in (root / "lr").iterdir())
    from op4ksr_bench.data.manifest import validate_suite

    assert validate_suite(bench["data"], "tiny") == []
