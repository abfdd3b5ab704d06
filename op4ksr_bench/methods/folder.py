"""``folder:PATH``: precomputed outputs of any method, matched to the suite by image id.

The folder holds one image per suite image, named ``<id>.<ext>`` (any extension :mod:`op4ksr_bench.imageio`
reads; PNG recommended), where ``<id>`` is the manifest id (the LR file's stem). An optional ``card.yaml``
in the folder describes the method for the results and the leaderboard::

    display_name: MySR (CVPR 2026)
    paper: https://arxiv.org/abs/...
    licence: CC-BY-4.0
    family: diffusion-onestep      # interpolation | regression | gan | diffusion-multistep | diffusion-onestep
    steps: 1
    patch_free: true
    default_tile: null
    default_overlap: null

A missing output fails that image (``no output for id ...``); everything else (shape, range) is checked by
the runner like any method's output. Inference time is not known and is recorded as null.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import yaml

from op4ksr_bench.errors import UsageError
from op4ksr_bench.imagefiles import is_image_file
from op4ksr_bench.licences import is_non_commercial
from op4ksr_bench.methods.base import Family, Method, MethodCard

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CARD_KEYS = (
    "display_name", "paper", "licence", "non_commercial", "family", "steps", "patch_free", "default_tile",
    "default_overlap",
)  # fmt: skip


def read_folder_card(folder: Path) -> MethodCard:
    """The card of a folder method: from ``card.yaml`` if present, else a minimal one named after the folder."""
    name = f"folder:{folder.name}"
    card_path = folder / "card.yaml"
    fields: dict[str, Any] = {}
    if card_path.exists():
        try:
            fields = yaml.safe_load(card_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise UsageError(f"{card_path}: not valid YAML ({error})") from error
        if not isinstance(fields, dict):
            raise UsageError(f"{card_path}: must be a mapping of {', '.join(CARD_KEYS)}")
        unknown = sorted(set(fields) - set(CARD_KEYS))
        if unknown:
            raise UsageError(f"{card_path}: unknown keys {', '.join(unknown)}; allowed: {', '.join(CARD_KEYS)}")
    family = fields.get("family", "external")
    if family not in get_args(Family):
        raise UsageError(f"{card_path}: family {family!r} is not one of {', '.join(get_args(Family))}")
    return MethodCard(
        name=name,
        display_name=str(fields.get("display_name", folder.name)),
        paper=str(fields.get("paper", "")),
        licence=str(fields.get("licence", "unknown")),
        non_commercial=bool(fields.get("non_commercial", is_non_commercial(str(fields.get("licence", ""))))),
        family=family,
        steps=int(fields.get("steps", 0)),
        patch_free=bool(fields.get("patch_free", True)),
        default_tile=fields.get("default_tile"),
        default_overlap=fields.get("default_overlap"),
        scales=(1, 2, 3, 4, 8),
    )


def index_outputs(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder``.

    Raises:
        UsageError: two files share a stem (``a.png`` and ``a.jpg``): the match would be ambiguous.
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            if path.stem in found:
                raise UsageError(f"{folder}: {found[path.stem].name} and {path.name} both match id {path.stem!r}")
            found[path.stem] = path
    return found


class FolderMethod(Method):
    """Outputs read from a folder, matched by image id.

    Args:
        path: The folder (``folder:PATH`` on the command line).
    """

    card = MethodCard(name="folder", display_name="folder", paper="", licence="unknown", family="external", steps=0)
    timing = "none"
    runs_in_process = False

    @classmethod
    def family_arguments(cls, argument: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"path": argument, **options}

    def __init__(self, scale: int = 4, device: str = "cpu", dtype: str = "float32", path: str | Path = "") -> None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise UsageError(f"folder:{path}: not a folder of output images")
        self.folder = folder.resolve()
        self.card = read_folder_card(self.folder)
        super().__init__(scale=scale, device=device, dtype=dtype)
        self.outputs = index_outputs(self.folder)

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        raise UsageError("a folder method returns precomputed outputs by image id; the runner calls upscale_sample")

    def upscale_sample(self, image_id: str, lr: torch.Tensor) -> torch.Tensor:
        from op4ksr_bench.imageio import read_image, to_tensor

        path = self.outputs.get(image_id)
        if path is None:
            raise FileNotFoundError(f"no output for id {image_id!r} in {self.folder}")
        return to_tensor(read_image(path))

    def options(self) -> dict[str, Any]:
        return {**super().options(), "path": str(self.folder), "outputs": len(self.outputs)}
