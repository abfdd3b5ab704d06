"""Learned metrics: LPIPS through the ``lpips`` package, DISTS and NR metrics through pyiqa, all offline.

Every model is built from local files only. Before building, each needed file is checked in the weights
catalogue (:mod:`op4ksr_bench.weights`); a missing one raises ``WeightsMissingError`` naming the file and
where it goes. While a model is built, :func:`offline_loading` makes any download attempt raise instead of
reaching a hub, and backbones whose weights the metric checkpoint already contains (timm ViT/ResNet) are
built without their own pretrained weights. pyiqa checkpoints are loaded into the same modules pyiqa's loader
fills, so values equal a direct pyiqa call on the same tensors, but through :func:`load_checkpoint`: tensors
only (``weights_only=True``, or safetensors), never pickled code; inside :func:`offline_loading` every
``torch.load`` (torchvision's backbone loader, pyiqa internals) is held to ``weights_only=True`` as well. Each
file's sha256 is checked when the metric is built (:func:`op4ksr_bench.weights.require_verified`).

**4K policies** (declared, deterministic, memory-bounded; recorded in ``settings``):

- ``tiled-mean``: the image is cut into ``tile x tile`` tiles on a grid from the top-left; where the size is
  not a multiple of the tile, the last row/column of tiles is aligned to the border (overlapping its
  neighbour) so every pixel is covered. The score is the unweighted mean over tiles (FR: the same tiles of
  both images). Images no larger than a tile are scored whole.
- ``native``: the whole image in one call (NIQE; MANIQA, whose pyiqa evaluation path already takes 20
  uniformly placed 224x224 crops, deterministically).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.metrics.base import Metric
from op4ksr_bench.metrics.pairs import check_reference
from op4ksr_bench.tilegrid import tile_starts
from op4ksr_bench.weights import WeightFile

logger = logging.getLogger(__name__)

PYIQA_LICENCE = "CC BY-NC-SA 4.0 (pyiqa; weights per original model)"

# The weight files of the learned metrics (registered in op4ksr_bench.weights.CATALOGUE).
# Full sha256 of files whose names carry only a hash prefix (referred to below as "see the hash sources"):
# - dists: measured on the identical file in the PyPI wheel torchmetrics==1.9.0, member
#   torchmetrics/functional/image/dists_models/weights.pt (12,288 bytes, a plain alpha/beta state dict; its sha256
#   starts with the f5e65c96 of pyiqa's file name): `pip download --no-deps torchmetrics==1.9.0`, hash the member.
# - torchvision-alexnet, torchvision-vgg16: the digests of download.pytorch.org's files, pinned identically by many
#   independent public projects; each starts with the prefix torchvision puts in the file name.
# - musiq-koniq, topiq-nr-koniq: only the name prefix is known (checked at load); maniqa-koniq: none (the sha256
#   recorded by `weights import` is checked at load). Every file loads as tensors only (load_checkpoint).

PYIQA_SOURCE = "the IQA-PyTorch weights release (chaofengc/IQA-PyTorch-Weights on the Hugging Face hub)"
PYIQA_WEIGHTS_LICENCE = "pyiqa weights: CC BY-NC-SA 4.0 / per original model"

TORCHVISION_ALEXNET = WeightFile(
    name="torchvision-alexnet",
    filename="alexnet-owt-7be5be79.pth",
    root="torchvision",
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",  # see the hash sources
    size=None,
    licence="BSD-3-Clause (torchvision); ImageNet-trained",
    source="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
)
TORCHVISION_VGG16 = WeightFile(
    name="torchvision-vgg16",
    filename="vgg16-397923af.pth",
    root="torchvision",
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",  # see the hash sources
    size=None,
    licence="BSD-3-Clause (torchvision); ImageNet-trained",
    source="https://download.pytorch.org/models/vgg16-397923af.pth",
)
DISTS_WEIGHTS = WeightFile(
    name="dists",
    filename="DISTS_weights-f5e65c96.pth",
    root="pyiqa",
    sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",  # see the hash sources
    size=12288,
    licence="MIT (DISTS); redistributed by pyiqa",
    source=PYIQA_SOURCE,
    non_commercial=True,
)
MUSIQ_KONIQ = WeightFile(
    name="musiq-koniq",
    filename="musiq_koniq_ckpt-e95806b9.pth",
    root="pyiqa",
    sha256=None,
    size=None,
    licence=PYIQA_WEIGHTS_LICENCE,
    source=PYIQA_SOURCE,
    non_commercial=True,
)
MANIQA_KONIQ = WeightFile(
    name="maniqa-koniq",
    filename="ckpt_koniq10k.pt",
    root="pyiqa",
    sha256=None,
    size=None,
    licence="Apache-2.0 (MANIQA); redistributed by pyiqa",
    source=PYIQA_SOURCE,
    non_commercial=True,
)
CLIP_RN50 = WeightFile(
    name="clip-rn50",
    filename="RN50.pt",
    root="clip",
    sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    size=None,
    licence="MIT (OpenAI CLIP)",
    source="OpenAI's CLIP release (the RN50.pt model file named in pyiqa/archs/clip_model.py)",
)
TOPIQ_NR_KONIQ = WeightFile(
    name="topiq-nr-koniq",
    filename="cfanet_nr_koniq_res50-9a73138b.pth",
    root="pyiqa",
    sha256=None,
    size=None,
    licence=PYIQA_WEIGHTS_LICENCE,
    source=PYIQA_SOURCE,
    non_commercial=True,
)


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover - both are dependencies
        return "not installed"


@contextlib.contextmanager
def offline_loading() -> Iterator[None]:
    """Build models from local files only: downloads raise, timm backbones skip their pretrained weights,
    and whatever pyiqa/lpips print while loading goes to the debug log instead of stdout."""
    import timm
    import torch.hub

    def refuse(url: str, *args: Any, **kwargs: Any) -> None:
        raise WeightsMissingError(
            f"a model tried to download {url}; place the file as `op4ksr-bench weights list` says"
        )

    original_create = timm.create_model

    def create_without_pretrained(*args: Any, **kwargs: Any):
        kwargs["pretrained"] = False  # the metric checkpoint holds the backbone weights
        return original_create(*args, **kwargs)

    original_load = torch.load

    def load_tensors_only(*args: Any, **kwargs: Any):
        kwargs["weights_only"] = True  # pyiqa and torch.hub pass weights_only=False; a weight file is data
        return original_load(*args, **kwargs)

    patches = [
        (torch.hub, "download_url_to_file", refuse),
        (timm, "create_model", create_without_pretrained),
        (torch, "load", load_tensors_only),
    ]
    try:
        import pyiqa.utils.download_util as pyiqa_download

        patches.append((pyiqa_download, "download_url_to_file", refuse))
    except ImportError:  # pragma: no cover
        pass
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in patches]
    printed = io.StringIO()
    try:
        for owner, attribute, replacement in patches:
            setattr(owner, attribute, replacement)
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)
        if printed.getvalue().strip():
            logger.debug("model loading printed: %s", printed.getvalue().strip())


def load_checkpoint(model, path: Path, strict: bool, weight_keys: str | None = None) -> None:
    """Load a checkpoint's tensors into ``model`` as pyiqa's ``load_pretrained_network`` would, without pickle.

    ``.safetensors`` files load through safetensors; anything else through ``torch.load(weights_only=True)``,
    which refuses pickled objects other than tensors and plain containers. A leading ``module.`` (from
    DataParallel training) is stripped from keys, as pyiqa does.

    Raises:
        WeightsRejectedError: the file holds something other than tensors (loading it would run pickled code).
    """
    import torch

    from op4ksr_bench.weights import WeightsRejectedError

    try:
        if Path(path).suffix == ".safetensors":
            import safetensors.torch

            state = safetensors.torch.load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure: the file is not a plain tensor checkpoint
        text = " ".join(str(error).split())[:160]
        raise WeightsRejectedError(
            f"{path}: not a plain tensor checkpoint, refused (loading it would unpickle code: {text}); "
            "import the published file again"
        ) from None
    if weight_keys is not None and isinstance(state, dict):
        state = state.get(weight_keys)
    if not isinstance(state, dict):
        raise WeightsRejectedError(f"{path}: holds no state dict{f' under {weight_keys!r}' if weight_keys else ''}")
    state = {(key[7:] if key.startswith("module.") else key): value for key, value in state.items()}
    model.load_state_dict(state, strict=strict)


def ensure_clip_importable() -> None:
    """openai-clip imports ``pkg_resources.packaging``, which recent setuptools no longer ships; provide it."""
    import importlib.util
    import sys
    import types

    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return
    import packaging.version

    shim = types.ModuleType("pkg_resources")
    shim.packaging = packaging  # the only attribute clip uses: packaging.version.parse
    sys.modules["pkg_resources"] = shim


def tiles(height: int, width: int, tile: int | None) -> list[tuple[int, int, int, int]]:
    """``(y, x, h, w)`` of every tile of the ``tiled-mean`` policy (one whole-image tile when ``tile`` is None)."""
    if tile is None:
        return [(0, 0, height, width)]
    return [
        (y, x, min(tile, height), min(tile, width))
        for y in tile_starts(height, tile, tile)
        for x in tile_starts(width, tile, tile)
    ]


class LearnedMetric(Metric):
    """A torch model scored under a declared 4K policy. Subclasses build ``self.model`` and score one tile."""

    tile: ClassVar[int | None] = None
    """Tile size of the ``tiled-mean`` policy, or None for ``native``."""

    def __init__(self, device: str = "cpu", crop_border: int = 0) -> None:
        import torch

        from op4ksr_bench import weights

        paths = {name: weights.require_verified(name) for name in self.weights}
        self.device = torch.device(device)
        self.crop_border = crop_border if self.kind == "FR" else 0
        with offline_loading():
            self.model = self.build(paths)
        self.model.eval().to(self.device)

    def build(self, paths: dict[str, Path]):
        raise NotImplementedError

    def score_tile(self, pred, ref):
        """Score one tile: ``[1, 3, h, w]`` float32 tensors in [0, 1] on the device -> float."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        policy = "native" if self.tile is None else "tiled-mean"
        values = {"policy": policy, "input": "RGB float32 in [0, 1]", "device": str(self.device)}
        if self.tile is not None:
            values["tile"] = self.tile
            values["tiling"] = "grid from top-left, last tile aligned to the border, unweighted mean"
        if self.kind == "FR":
            values["crop_border"] = self.crop_border
        return values

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        import torch

        from op4ksr_bench.imageio import to_tensor
        from op4ksr_bench.metrics.fidelity import crop_border

        if self.kind == "FR":
            check_reference(self.name, pred, ref)
            pred, ref = crop_border(pred, self.crop_border), crop_border(ref, self.crop_border)
        height, width = pred.shape[:2]
        scores = []
        with torch.inference_mode():
            for y, x, tile_height, tile_width in tiles(height, width, self.tile):
                window = (slice(y, y + tile_height), slice(x, x + tile_width))
                pred_tile = to_tensor(np.array(pred[window])).to(self.device)  # a writable copy
                ref_tile = to_tensor(np.array(ref[window])).to(self.device) if self.kind == "FR" else None
                scores.append(float(self.score_tile(pred_tile, ref_tile)))
        return {self.name: float(np.mean(scores))}


# --------------------------------------------------------------------------------------------------------- LPIPS


class _LPIPS(LearnedMetric):
    kind: ClassVar = "FR"
    higher_is_better: ClassVar[bool] = False
    backend: ClassVar[str] = f"lpips=={package_version('lpips')}"
    licence: ClassVar[str] = "BSD-2-Clause (lpips; linear weights bundled in the package); torchvision backbone"
    tile: ClassVar[int | None] = 1024
    network: ClassVar[str]

    def build(self, paths: dict[str, Path]):
        import lpips
        import torch
        import torchvision

        model = lpips.LPIPS(net=self.network, pretrained=True, pnet_rand=True, verbose=False)
        backbone = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16}[self.network](weights=None)
        backbone.load_state_dict(torch.load(paths[self.weights[0]], map_location="cpu", weights_only=True))
        for stage in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
            for index, module in stage.named_children():
                module.load_state_dict(backbone.features[int(index)].state_dict())
        return model

    def score_tile(self, pred, ref):
        return self.model(pred, ref, normalize=True).mean()

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "network": self.network, "version": "0.1"}


class LPIPSAlex(_LPIPS):
    """LPIPS v0.1 with AlexNet features (lower is better)."""

    name: ClassVar[str] = "lpips-alex"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 6
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    network: ClassVar[str] = "alex"
    weights: ClassVar[tuple[str, ...]] = ("torchvision-alexnet",)


class LPIPSVGG(_LPIPS):
    """LPIPS v0.1 with VGG16 features (lower is better)."""

    name: ClassVar[str] = "lpips-vgg"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 7
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    network: ClassVar[str] = "vgg"
    weights: ClassVar[tuple[str, ...]] = ("torchvision-vgg16",)


# --------------------------------------------------------------------------------------------------------- pyiqa


class _Pyiqa(LearnedMetric):
    backend: ClassVar[str] = f"pyiqa=={package_version('pyiqa')}"
    licence: ClassVar[str] = PYIQA_LICENCE
    non_commercial: ClassVar[bool] = True

    def score_tile(self, pred, ref):
        output = self.model(pred) if ref is None else self.model(pred, ref)
        return output.flatten()[0]


class DISTS(_Pyiqa):
    """DISTS (FR, lower is better) through pyiqa."""

    name: ClassVar[str] = "dists"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 8
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)  # 0 at identity; a negative structure term can pass 1
    kind: ClassVar = "FR"
    higher_is_better: ClassVar[bool] = False
    weights: ClassVar[tuple[str, ...]] = ("dists", "torchvision-vgg16")
    tile: ClassVar[int | None] = 1024

    def build(self, paths: dict[str, Path]):
        from pyiqa.archs.dists_arch import DISTS as Arch

        model = Arch(pretrained=False)  # torchvision vgg16 comes from $TORCH_HOME/hub/checkpoints
        load_checkpoint(model, paths["dists"], strict=False)
        return model


class NIQEPyiqa(_Pyiqa):
    """NIQE through pyiqa (NR, lower is better) on the Y of YIQ, pyiqa's default: the cross-check of the native
    ``niqe`` (``op4ksr_bench.metrics.niqe``), same parameters and convention."""

    name: ClassVar[str] = "niqe-pyiqa"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = None
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = False
    licence: ClassVar[str] = "CC BY-NC-SA 4.0 (pyiqa code); parameters Apache-2.0 (BasicSR)"
    weights: ClassVar[tuple[str, ...]] = ("niqe-pris-params",)
    colour: ClassVar[str] = "yiq"

    def build(self, paths: dict[str, Path]):
        from pyiqa.archs.niqe_arch import NIQE as Arch

        return Arch(test_y_channel=True, color_space=self.colour, pretrained_model_path=str(paths["niqe-pris-params"]))

    def settings(self) -> dict[str, Any]:
        from op4ksr_bench.metrics.niqe import COLOUR_NAMES

        return {**super().settings(), "colour": COLOUR_NAMES[self.colour], "crop_border": 0}


class MUSIQ(_Pyiqa):
    """MUSIQ trained on KonIQ-10k (NR, higher is better); tiled so native-resolution patches stay bounded."""

    name: ClassVar[str] = "musiq"
    default: ClassVar[bool] = True
    display_order: ClassVar[int | None] = 11
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = True
    weights: ClassVar[tuple[str, ...]] = ("musiq-koniq",)
    tile: ClassVar[int | None] = 512

    def build(self, paths: dict[str, Path]):
        from pyiqa.archs.musiq_arch import MUSIQ as Arch

        model = Arch(pretrained=False)  # the same module pyiqa builds for a given checkpoint path
        load_checkpoint(model, paths["musiq-koniq"], strict=True)
        return model


class MANIQA(_Pyiqa):
    """MANIQA trained on KonIQ-10k (NR, higher is better): pyiqa's 20 uniform 224x224 crops, deterministic."""

    name: ClassVar[str] = "maniqa"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 12
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = True
    weights: ClassVar[tuple[str, ...]] = ("maniqa-koniq",)

    def build(self, paths: dict[str, Path]):
        from pyiqa.archs.maniqa_arch import MANIQA as Arch

        model = Arch(train_dataset="koniq", scale=0.8, pretrained=False)
        load_checkpoint(model, paths["maniqa-koniq"], strict=True)
        return model

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "crops": "20 uniformly placed 224x224 crops (pyiqa eval path), mean"}


class CLIPIQA(_Pyiqa):
    """CLIP-IQA with CLIP RN50 and pyiqa's prompt pairs (NR, higher is better)."""

    name: ClassVar[str] = "clipiqa"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 13
    score_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = True
    weights: ClassVar[tuple[str, ...]] = ("clip-rn50",)
    tile: ClassVar[int | None] = 512

    def build(self, paths: dict[str, Path]):
        ensure_clip_importable()
        from pyiqa.archs.clipiqa_arch import CLIPIQA as Arch

        return Arch(model_type="clipiqa", backbone=str(paths["clip-rn50"]))


class TOPIQNR(_Pyiqa):
    """TOPIQ-NR (CFANet, ResNet50, KonIQ-10k; NR, higher is better)."""

    name: ClassVar[str] = "topiq-nr"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 14
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = True
    weights: ClassVar[tuple[str, ...]] = ("topiq-nr-koniq",)
    tile: ClassVar[int | None] = 512

    def build(self, paths: dict[str, Path]):
        from pyiqa.archs.topiq_arch import CFANet as Arch

        model = Arch(
            semantic_model_name="resnet50", model_name="cfanet_nr_koniq_res50", use_ref=False, pretrained=False
        )
        load_checkpoint(model, paths["topiq-nr-koniq"], strict=True, weight_keys="params")
        return model
