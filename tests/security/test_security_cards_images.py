"""Item 6: external cards and ``--opt`` values never become extra arguments or a shell; odd images fail cleanly."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from PIL import Image

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.methods.external import ExternalMethod
from op4ksr_bench.results import read_samples


def _argv_card(tmp_path: Path, command: str) -> Path:
    """A card whose script records its arguments in ``<output_dir>/argv.json``."""
    (tmp_path / "argv.py").write_text(
        "import json, sys, pathlib\npathlib.Path(sys.argv[1], 'argv.json').write_text(json.dumps(sys.argv[1:]))\n"
    )
    card = tmp_path / "argv.yaml"
    card.write_text(yaml.safe_dump({
        "name": "argv", "display_name": "argv", "repository": "local", "licence": "MIT", "backbone": "none",
        "family": "regression", "steps": 1, "workdir": str(tmp_path), "command": command, "output": "{id}.png",
        "options": {"value": "default"},
    }))  # fmt: skip
    return card


def _arguments(tmp_path: Path, command: str, value: str) -> list[str]:
    method = ExternalMethod(card=str(_argv_card(tmp_path, command)), python=sys.executable, value=value)
    lr = tmp_path / "lr.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(lr)
    method.prepare([("img", lr)], tmp_path / "run" / "work")
    return json.loads((tmp_path / "run" / "work" / "output" / "argv.json").read_text())[1:]


HOSTILE_VALUES = ["a b", "x' --evil 'y", 'x" --evil "y', "; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "{python}"]


@pytest.mark.parametrize("quoting", ["{value}", "'{value}'", '"{value}"', "--flag={value}"])
@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_value_is_one_argument_whatever_quotes_the_card_uses(tmp_path, quoting, value):
    arguments = _arguments(tmp_path, f"{{python}} argv.py {{output_dir}} {quoting}", value)
    expected = quoting.replace("'", "").replace('"', "").replace("{value}", value)
    assert arguments == [expected]
    assert not list(tmp_path.rglob("PWNED"))  # no shell anywhere


def test_opt_values_with_braces_are_taken_literally(tmp_path):
    card = _argv_card(tmp_path, "{python} argv.py {output_dir} {value}")
    method = ExternalMethod(card=str(card), python=sys.executable, value="/weights/{epoch}/model.ckpt")
    assert method.values["value"] == "/weights/{epoch}/model.ckpt"
    assert _arguments(tmp_path, "{python} argv.py {output_dir} {value}", "{repo}") == ["{repo}"]


def test_card_defaults_still_expand_references(tmp_path):
    card = tmp_path / "c.yaml"
    card.write_text(yaml.safe_dump({
        "name": "c", "display_name": "c", "repository": "local", "licence": "MIT", "backbone": "none",
        "family": "regression", "steps": 1, "command": "{python} x {ckpt}", "output": "{id}.png",
        "options": {"repo": None, "ckpt": "{repo}/weights/x.ckpt"},
    }))  # fmt: skip
    assert ExternalMethod(card=str(card), repo="/r").values["ckpt"] == "/r/weights/x.ckpt"


def test_an_output_template_leaving_the_output_folder_fails_the_images(tmp_path):
    card = _argv_card(tmp_path, "{python} argv.py {output_dir}")
    text = yaml.safe_load(card.read_text())
    text["output"] = "../../../{id}.png"
    card.write_text(yaml.safe_dump(text))
    method = ExternalMethod(card=str(card), python=sys.executable)
    lr = tmp_path / "lr.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(lr)
    method.prepare([("img", lr)], tmp_path / "run" / "work")
    assert "img" not in method.outputs and "must be relative and stay inside" in method.failure


# ------------------------------------------------------------------ odd images inside a suite (held before)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb() -> bytes:
    side = 20000  # 400 Mpx claimed by a ~100-byte file
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    return header + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def _write_lr(root: Path, kind: str) -> str:
    """Replace img000's LR with an odd file of ``kind``; returns its new relative path."""
    rgb = np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    if kind == "bomb":
        (root / "lr" / "img000.png").write_bytes(_bomb())
        return "lr/img000.png"
    if kind == "16-bit":
        import cv2

        cv2.imwrite(str(root / "lr" / "img000.png"), rgb[:, :, ::-1].astype(np.uint16) * 257)
        return "lr/img000.png"
    if kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(root / "lr" / "img000.jpg", quality=95)
        return "lr/img000.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display: the upright image is 12x16, not 16x12
    Image.fromarray(rgb).save(root / "lr" / "img000.jpg", exif=exif.tobytes(), quality=95)
    return "lr/img000.jpg"


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("bomb", "failed", "decompression-bomb guard"),
        ("16-bit", "ok", None),
        ("cmyk", "ok", None),
        ("exif", "failed", "full-reference metrics need equal sizes"),
    ],
)
def test_odd_images_in_a_suite_are_read_by_policy_or_fail_with_one_line(bench, tools, kind, status, reason):
    from op4ksr_bench.data.manifest import manifest_line, suite_hash

    root = bench["suite"]()
    relative = _write_lr(root, kind)
    entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    entries[0].update(lr=relative, lr_sha256=sha256_file(root / relative))
    (root / "manifest.jsonl").write_text("".join(manifest_line(entry) + "\n" for entry in entries))
    info = json.loads((root / "suite.json").read_text())
    info["hash"] = suite_hash((root / "suite.yaml").read_bytes(), (root / "manifest.jsonl").read_bytes())
    (root / "suite.json").write_text(json.dumps(info))
    if status == "ok":
        tools.run_bicubic()
    else:
        with pytest.raises(typer.Exit):
            tools.run_bicubic()
    rows = {row["id"]: row for row in read_samples(tools.run_folder(bench["results"]) / "samples.jsonl")}
    assert rows["img000"]["status"] == status and rows["img001"]["status"] == "ok"
    if reason:
        assert reason in rows["img000"]["reason"] and "\n" not in rows["img000"]["reason"]
