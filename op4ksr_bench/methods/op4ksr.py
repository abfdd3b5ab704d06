"""The OP4KSR reference model as a benchmark method (one step, one pass, no tiles).

This is the only place the benchmark imports ``reference_model`` (lazily, in ``__init__``). By default it loads
the nano checkpoint shipped in ``reference_model/checkpoints/nano/`` (trained on this project's CPU machine;
a nano-scale reference, not a competitive model); ``--opt weights=DIR`` loads any folder in the layout
``reference_model/model.py`` documents, including real FLUX.1-dev + SC-VAE weights.

The card describes the folder actually loaded (:func:`checkpoint_card`): its model name and the sha256 of each
weights file it reads. A checkpoint shipped in ``reference_model/checkpoints/<name>/`` is verified at every load
against :data:`CHECKPOINT_SHA256` (a changed or missing file is refused, and a shipped folder without an entry
there is refused too); any other folder is hashed and recorded as it is.

Size policy (declared, recorded in every result through :meth:`Op4ksrMethod.options`): the model needs output
sides that are multiples of its token pitch (32 px with the F16 VAE). With ``pad="reflect"`` (default) an input
whose x4 size is not such a multiple (e.g. 960x540 -> 3840x2160, since 2160 = 67.5 x 32) is reflect-padded on
the right/bottom to the next multiple, super-resolved in one pass, and the output cropped back to exactly
``scale x`` the input. ``pad="none"`` raises instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.identity import OP4KSR_READS, file_sha256, folder_files
from op4ksr_bench.methods.base import Method, MethodCard, WeightRef
from op4ksr_bench.methods.dtypes import check_dtype, torch_dtype

if TYPE_CHECKING:
    import torch

PAD_MODES = ("reflect", "none")


DEFAULT_CHECKPOINT = "cpu-skip-pf"
"""The shipped checkpoint the method loads without ``--opt weights``."""
CHECKPOINT_SHA256: dict[str, dict[str, str]] = {
    "nano": {
        "transformer/diffusion_pytorch_model.safetensors": (
            "ab9079b2f551aa5f91212b5833c9010546115faf293c89946d9b746c4d7f83b7"
        ),
        "vae/diffusion_pytorch_model.safetensors": "0b4fc1899ce3a6a9d9030dd674c99a8b025ef3a4567415e2cd31806ef0e93592",
        "prompt_embeddings.safetensors": "3f07414292180633acde138a99fac84dfc78db5da860d40784b71d290aef7f6a",
    },
    "cpu-skip": {
        "transformer/diffusion_pytorch_model.safetensors": (
            "945e1f592cc2e1a42177ab2e1c9f150445505174d2ace031cd46996797608f39"
        ),
        "vae/diffusion_pytorch_model.safetensors": "baa17601a641cc66b19ea8749dff8fc57c96f39f78e0e5addd84deb01f24bad5",
        "prompt_embeddings.safetensors": "3f07414292180633acde138a99fac84dfc78db5da860d40784b71d290aef7f6a",
        "skip.safetensors": "62faef0ed82777c37184f1c4766598999543789c612ea37c6827d5c9c6902183",
    },
    "cpu-skip-pf": {
        "transformer/diffusion_pytorch_model.safetensors": (
            "fba9d0c41d3c642b1f3f4b5d15d922de24ef44a0e3a53bb103cc140fca515ef4"
        ),
        "vae/diffusion_pytorch_model.safetensors": "baa17601a641cc66b19ea8749dff8fc57c96f39f78e0e5addd84deb01f24bad5",
        "prompt_embeddings.safetensors": "3f07414292180633acde138a99fac84dfc78db5da860d40784b71d290aef7f6a",
        "skip.safetensors": "3c3a431372e1ba5c412a7d55aa8f04a5f0c5dc7478722a19e7b01bbc62d0b14c",
    },
}  # fmt: skip
"""``{checkpoint folder name: {weights file relative to it: sha256}}`` of every checkpoint shipped in
``reference_model/checkpoints/``: what each load of that folder is checked against."""
SHIPPED_CHECKPOINTS = tuple(CHECKPOINT_SHA256)
"""Checkpoints shipped in ``reference_model/checkpoints/``; ``--opt weights=NAME`` selects one by name."""
SHIPPED_LICENCE = "Apache-2.0"
"""Licence of the shipped checkpoints (the repository's)."""


def checkpoints_dir() -> Path:
    """``reference_model/checkpoints`` inside the installed ``reference_model`` package."""
    import reference_model

    # __path__ rather than __file__: it also works if an old editable install maps the package as a namespace
    return Path(next(iter(reference_model.__path__))).resolve() / "checkpoints"


def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """The folder of shipped checkpoint ``name`` (default: the method's default weights)."""
    if name not in SHIPPED_CHECKPOINTS:
        raise UsageError(f"op4ksr: no shipped checkpoint {name!r}; shipped: {', '.join(SHIPPED_CHECKPOINTS)}")
    return checkpoints_dir() / name


def weight_files(folder: Path) -> dict[str, Path]:
    """``{relative name: path}`` of the ``.safetensors`` files a model folder's load reads, in the order of
    :data:`~op4ksr_bench.identity.OP4KSR_READS`, folders first (transformer, VAE, LoRA; prompt embeddings)."""
    files: dict[str, Path] = {}
    for member in sorted(OP4KSR_READS, key=lambda name: name.endswith(".safetensors")):
        files.update(
            (name, path) for name, path in folder_files(folder, (member,)).items() if name.endswith(".safetensors")
        )
    return files


def model_name(folder: Path) -> str:
    """The model name ``op4ksr.json`` gives (``nano``), else the folder's name (a layout without that file)."""
    try:
        name = json.loads((Path(folder) / "op4ksr.json").read_text(encoding="utf-8"))["model"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return Path(folder).name
    return str(name)


def checkpoint_card(folder: Path) -> MethodCard:
    """The ``op4ksr`` card of model folder ``folder``, its weights hashed now (before anything is loaded).

    Raises:
        WeightsMissingError: ``folder`` is a shipped checkpoint and a file differs from (or lacks) its recorded
            sha256, or the checkpoint has no record in :data:`CHECKPOINT_SHA256`.
    """
    folder = Path(folder).resolve()
    name_of_model = model_name(folder)
    hashes = {name: file_sha256(path) for name, path in weight_files(folder).items()}
    shipped = folder.parent == checkpoints_dir()
    if shipped:
        expected = CHECKPOINT_SHA256.get(folder.name)
        if expected is None:
            raise WeightsMissingError(
                f"{folder}: a shipped checkpoint without recorded hashes; add its files' sha256 to "
                "CHECKPOINT_SHA256 in op4ksr_bench/methods/op4ksr.py"
            )
        for name in sorted(set(expected) | set(hashes)):
            if hashes.get(name) != expected.get(name):
                found = (hashes.get(name) or "missing")[:12]
                raise WeightsMissingError(
                    f"{folder / name}: sha256 {found}... is not the recorded {str(expected.get(name))[:12]}...; "
                    "restore reference_model/checkpoints from the repository"
                )
    return replace(
        Op4ksrMethod.card,
        display_name=f"OP4KSR (reference, {name_of_model})",
        licence=Op4ksrMethod.card.licence if shipped else "unknown (weights from --opt weights)",
        weights=tuple(WeightRef(f"op4ksr-{name_of_model}/{name}", digest) for name, digest in hashes.items()),
    )


class Op4ksrMethod(Method):
    """OP4KSR reference: F16 VAE + Flux transformer, one call at a fixed timestep, whole image at once.

    Args:
        scale: Super-resolution factor (4).
        device: Torch device.
        dtype: Weights/compute dtype: ``float32``, ``bfloat16`` or ``float16`` (default: bfloat16 on CUDA,
            float32 elsewhere). Weights are read straight into it (a bf16 model never exists in float32).
        weights: Model folder, or the name of a shipped checkpoint (``cpu-skip-pf``, ``cpu-skip``, ``nano``; a
            name wins over a folder of that name in the working directory: write ``./nano`` for the folder).
            Default: the shipped default checkpoint (``cpu-skip-pf``).
        pad: ``reflect`` (pad to the token pitch, crop back; declared) or ``none`` (raise on other sizes).
        rfr_mode: Override the checkpoint's RFR mode at inference (``none``, ``base``, ``ntk``, ``pi``), or None.
        rfr_scale: Override the checkpoint's RFR factor at inference, or None.
    """

    card = MethodCard(
        name="op4ksr",
        display_name=f"OP4KSR (reference, {DEFAULT_CHECKPOINT})",
        paper="Deng et al., OP4KSR: One-Step Patch-Free 4K Super-Resolution with Periodic Artifact Suppression, "
        "arXiv 2605.13457 (2026); this project's reference implementation",
        licence=SHIPPED_LICENCE,
        family="diffusion-onestep",
        steps=1,
        patch_free=True,
        scales=(4,),
        weights=tuple(
            WeightRef(f"op4ksr-{DEFAULT_CHECKPOINT}/{name}", digest)
            for name, digest in CHECKPOINT_SHA256[DEFAULT_CHECKPOINT].items()
        ),
    )
    """The card of the default checkpoint (for listings); each instance carries the card of the folder it loaded."""

    def __init__(
        self,
        scale: int = 4,
        device: str = "cpu",
        dtype: str | None = None,
        weights: str | None = None,
        pad: str = "reflect",
        rfr_mode: str | None = None,
        rfr_scale: float | None = None,
    ) -> None:
        import torch

        if dtype is None:
            dtype = "bfloat16" if torch.device(device).type == "cuda" else "float32"
        super().__init__(scale=scale, device=device, dtype=dtype)

        from reference_model.model import OP4KSR
        from reference_model.rope import RFR_MODES

        if pad not in PAD_MODES:
            raise UsageError(f"op4ksr: pad must be one of {', '.join(PAD_MODES)}, got {pad!r}")
        check_dtype(dtype)
        if rfr_mode is not None and rfr_mode not in RFR_MODES:
            raise UsageError(f"op4ksr: rfr_mode must be one of {', '.join(RFR_MODES)}, got {rfr_mode!r}")
        if weights in SHIPPED_CHECKPOINTS:
            folder = shipped_checkpoint(weights)
        else:
            folder = Path(weights).expanduser() if weights else shipped_checkpoint()
        if not folder.is_dir():
            raise WeightsMissingError(
                f"op4ksr weights folder {folder} not found; pass --opt weights=DIR (transformer/, vae/, "
                "prompt_embeddings.safetensors) or restore reference_model/checkpoints/nano from the repository"
            )
        overrides: dict[str, Any] = {}
        if rfr_mode is not None:
            overrides["rfr_mode"] = rfr_mode
        if rfr_scale is not None:
            overrides["rfr_scale"] = float(rfr_scale)
        self.card = checkpoint_card(folder)  # a shipped checkpoint is verified before it is read
        self.weights_folder = folder
        self.pad = pad
        self.model = OP4KSR.from_pretrained(folder, overrides=overrides, dtype=torch_dtype(dtype), device=device).eval()
        if self.model.config.scale != scale:
            raise UsageError(f"op4ksr: the weights in {folder} are for x{self.model.config.scale}, not x{scale}")

    @classmethod
    def from_model(cls, model, device: str, dtype: str, pad: str = "reflect", label: str = "in-memory") -> Op4ksrMethod:
        """The method around an already built :class:`~reference_model.model.OP4KSR` (already on ``device`` in
        ``dtype``; e.g. full-size random weights for timing): the same ``upscale`` the benchmark runs."""
        if pad not in PAD_MODES:
            raise UsageError(f"op4ksr: pad must be one of {', '.join(PAD_MODES)}, got {pad!r}")
        method = cls.__new__(cls)
        Method.__init__(method, scale=model.config.scale, device=device, dtype=dtype)
        method.weights_folder = Path(label)
        method.pad = pad
        method.model = model.eval()
        return method

    def _padding(self, height: int, width: int) -> tuple[int, int]:
        """LR pixels to add at the bottom and right so the output is a multiple of the token pitch."""
        step = self.model.pixels_per_token
        # the smallest LR multiple m with (m * scale) % step == 0
        lr_step = step // math.gcd(step, self.scale)
        return (-height) % lr_step, (-width) % lr_step

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        height, width = lr.shape[-2:]
        pad_bottom, pad_right = self._padding(height, width)
        if (pad_bottom or pad_right) and self.pad == "none":
            raise UsageError(
                f"op4ksr: {width}x{height} x{self.scale} is not a multiple of {self.model.pixels_per_token} px; "
                "use --opt pad=reflect"
            )
        if pad_bottom or pad_right:
            mode = "reflect" if pad_bottom < height and pad_right < width else "replicate"
            lr = F.pad(lr, (0, pad_right, 0, pad_bottom), mode=mode)
        weight_dtype = next(self.model.parameters()).dtype
        output = self.model.upscale(lr.to(weight_dtype))
        return output[..., : height * self.scale, : width * self.scale].float().contiguous()

    def options(self) -> dict[str, Any]:
        config = self.model.config
        return {
            **super().options(),
            "weights": str(self.weights_folder),
            "pad": self.pad,
            "model": config.name,
            "timestep": config.timestep,
            "rfr_mode": config.rfr_mode,
            "rfr_scale": config.rfr_scale,
            "pixels_per_token": self.model.pixels_per_token,
        }

    def periods(self) -> tuple[int, ...]:
        """The latent-cell and token pitches in output pixels (16 and 32 with the F16 VAE)."""
        latent = self.model.vae.spatial_compression
        return (latent, 2 * latent)
