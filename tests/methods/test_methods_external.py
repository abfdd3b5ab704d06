"""external: the shipped cards are complete, and a test-written card + command runs through the method."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import write_png
from op4ksr_bench.methods.external import ExternalCard, card_names, find_card
from op4ksr_bench.methods.factory import create_method

EXPECTED_CARDS = {"stablesr", "diffbir", "seesr", "supir", "osediff", "pisa-sr", "invsr", "tsd-sr", "dreamclear",
                  "hypir"}  # fmt: skip

SCRIPT = """
import argparse, pathlib
import numpy as np
from PIL import Image
parser = argparse.ArgumentParser()
parser.add_argument("--input"); parser.add_argument("--output"); parser.add_argument("--scale", type=int)
parser.add_argument("--fail", default="")
args = parser.parse_args()
for path in sorted(pathlib.Path(args.input).glob("*.png")):
    if path.stem == args.fail:
        continue
    image = np.asarray(Image.open(path).convert("RGB"))
    big = image.repeat(args.scale, axis=0).repeat(args.scale, axis=1)
    Image.fromarray(big).save(pathlib.Path(args.output) / f"{path.stem}_sr.png")
print("done")
"""


def test_every_shipped_card_loads_and_is_complete():
    assert set(card_names()) == EXPECTED_CARDS
    for name in card_names():
        card = ExternalCard.load(find_card(name))
        assert card.repository.startswith("https://github.com/")
        assert card.licence and card.backbone and card.steps >= 1
        assert card.tile.get("source") and isinstance(card.tile.get("size"), int)
        assert card.tile["size"] > card.tile["overlap"] >= 0
        assert {"input_dir", "output_dir", "repo"} <= set(card.placeholders())
        assert "{id}" in card.output
        with pytest.raises(UsageError, match="--opt repo="):
            create_method(f"external:{name}")


@pytest.fixture
def card(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "upscale.py").write_text(SCRIPT)
    path = tmp_path / "nearest.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: nearest
        display_name: Nearest (test command)
        repository: https://github.com/example/nearest
        licence: Apache-2.0
        backbone: none
        family: interpolation
        steps: 1
        tile: {size: 64, overlap: 16, source: test}
        command: "{python} upscale.py --input {input_dir} --output {output_dir} --scale {scale} --fail {fail}"
        output: "{id}_sr.png"
        options: {repo: null, fail: none}
        """)
    )
    return path, repo


def test_external_command_runs_once_and_outputs_match_by_id(card, tmp_path):
    path, repo = card
    method = create_method(f"external:{path}", options={"repo": str(repo), "python": sys.executable, "fail": "b"})
    images = {}
    for name in ("a", "b"):
        images[name] = np.random.default_rng(len(name)).integers(0, 256, (5, 6, 3), dtype=np.uint8)
        write_png(tmp_path / f"{name}.png", images[name])
    method.prepare([("a", tmp_path / "a.png"), ("b", tmp_path / "b.png")], tmp_path / "work")
    assert method.batch_seconds > 0 and method.amortised_seconds == pytest.approx(method.batch_seconds / 2)
    out = method.upscale_sample("a", torch.zeros(1, 3, 5, 6))
    assert out.shape == (1, 3, 20, 24)
    expected = images["a"].repeat(4, axis=0).repeat(4, axis=1)
    assert np.array_equal(out.mul(255).round().byte()[0].permute(1, 2, 0).numpy(), expected)
    with pytest.raises(FileNotFoundError, match="wrote no b_sr.png"):
        method.upscale_sample("b", torch.zeros(1, 3, 5, 6))
    assert "done" in (tmp_path / "work" / "command.log").read_text()
    assert method.periods() == (48,)
    assert method.options()["values"]["fail"] == "b"


def test_failing_command_is_reported_per_image(card, tmp_path):
    path, repo = card
    (repo / "upscale.py").write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    method = create_method(f"external:{path}", options={"repo": str(repo), "python": sys.executable})
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    method.prepare([("a", tmp_path / "a.png")], tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="exited with code 3"):
        method.upscale_sample("a", torch.zeros(1, 3, 4, 4))


def test_card_errors(card, tmp_path):
    path, repo = card
    with pytest.raises(UsageError, match="unknown option"):
        create_method(f"external:{path}", options={"repo": str(repo), "colour": "red"})
    with pytest.raises(UsageError, match="no such card"):
        create_method("external:nonexistent")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n")
    with pytest.raises(UsageError, match="missing field"):
        create_method(f"external:{broken}")
    method = create_method(f"external:{path}", options={"repo": str(tmp_path / "absent")})
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UsageError, match="does not exist"):
        method.prepare([("a", tmp_path / "a.png")], tmp_path / "work")
