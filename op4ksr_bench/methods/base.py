"""The method contract: a frozen card plus one ``upscale`` call.

Every method, from bicubic to the OP4KSR reference, is a :class:`Method` subclass with a
:class:`MethodCard` and ``upscale(lr) -> sr``. Weights load in ``__init__`` (never at import); options are
explicit keyword arguments and :meth:`Method.options` reports the ones in effect, which the runner writes
into every result. A method that cannot meet the contract raises; it never pads, resizes or tiles silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import torch

Family = Literal["interpolation", "regression", "gan", "diffusion-multistep", "diffusion-onestep", "external"]
Timing = Literal["measured", "amortised", "none"]


@dataclass(frozen=True)
class WeightRef:
    """One weights file a method needs: its name in the weights catalogue and its sha256."""

    name: str
    sha256: str | None = None


@dataclass(frozen=True)
class MethodCard:
    """What a method is, for listings, results and the leaderboard.

    Attributes:
        name: Registry name (``bicubic``, ``realesrgan-x4plus``, ...).
        display_name: Human-readable name for tables.
        paper: Citation or URL of the method's paper ("" for classical resampling).
        licence: SPDX id or short licence name of the code and weights (``BSD-3-Clause``, ``non-commercial``).
        family: One of :data:`Family`.
        steps: Network evaluations per image (0 for interpolation, 1 for feed-forward/one-step).
        patch_free: True if the method processes the whole image in one pass.
        default_tile: Tile size in output pixels the method uses by default (None if patch-free).
        default_overlap: Overlap between tiles in output pixels (None if patch-free).
        scales: Scale factors the method supports.
        weights: Weight files the method loads.
        non_commercial: True if the licence forbids commercial use (the leaderboard marks the row).
    """

    name: str
    display_name: str
    paper: str
    licence: str
    family: Family
    steps: int
    patch_free: bool = True
    default_tile: int | None = None
    default_overlap: int | None = None
    scales: tuple[int, ...] = (4,)
    weights: tuple[WeightRef, ...] = field(default_factory=tuple)
    non_commercial: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method:
    """Base class for super-resolution methods.

    Subclasses set ``card`` and implement :meth:`upscale`. Constructor keyword arguments are the method's
    options; ``--opt KEY=VALUE`` on the command line passes them (values parsed as YAML scalars).
    """

    card: ClassVar[MethodCard]
    timing: ClassVar[Timing] = "measured"
    """How the runner times this method: ``measured`` per call (warm-up excluded, device synchronised),
    ``amortised`` (a batch run in :meth:`prepare`, its wall time divided over the images) or ``none``
    (precomputed outputs)."""
    local_options: ClassVar[tuple[str, ...]] = ("device",)
    """Options that cannot change the output (device index, a weights path whose sha256 is also an option):
    left out of the run identity, so shards on different machines share one run id."""
    runs_in_process: ClassVar[bool] = True
    """False for methods whose outputs come from elsewhere (folders, external commands): they cannot be tiled."""
    amortised_seconds: float | None = None
    """For ``amortised`` timing: the seconds per image of the batch run in :meth:`prepare` (None until it ran)."""

    @classmethod
    def family_arguments(cls, argument: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
        """Constructor keyword arguments (besides scale, device, dtype) for ``FAMILY:ARGUMENT`` with ``--opt``
        ``options``; implemented by the families registered in :data:`op4ksr_bench.methods.FAMILIES`."""
        raise NotImplementedError(f"{cls.__name__} is not a parametrised method family")

    def __init__(self, scale: int = 4, device: str = "cpu", dtype: str = "float32") -> None:
        if scale not in self.card.scales:
            from op4ksr_bench.errors import UsageError

            raise UsageError(f"{self.card.name} supports scale {self.card.scales}, not x{scale}")
        self.scale = scale
        self.device = device
        self.dtype = dtype

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """Super-resolve one image.

        Args:
            lr: ``float32`` tensor ``[1, 3, h, w]`` in ``[0, 1]`` on ``self.device``.

        Returns:
            ``float32`` tensor ``[1, 3, h * scale, w * scale]`` in ``[0, 1]``.
        """
        raise NotImplementedError

    def prepare(self, samples: Sequence[tuple[str, Path]], work_dir: Path) -> None:
        """Called once by the runner with the ``(image id, LR path)`` pairs it is about to process.

        In-process methods need nothing here; batch methods (external commands) run their whole batch now,
        using ``work_dir`` (inside the run folder) for their inputs, outputs and logs.
        """

    def upscale_sample(self, image_id: str, lr: torch.Tensor) -> torch.Tensor:
        """The runner's entry point: :meth:`upscale`, unless outputs are matched by image id (folders)."""
        return self.upscale(lr)

    def options(self) -> dict[str, Any]:
        """The options in effect (all of them, defaults included), JSON-serialisable."""
        return {"scale": self.scale, "device": self.device, "dtype": self.dtype}

    def periods(self) -> tuple[int, ...]:
        """Extra spatial periods (output px) this method may imprint, e.g. its tile stride; scored by PAS/seam."""
        return ()


def check_output(output: Any, lr_shape: tuple[int, ...], scale: int) -> str | None:
    """Why ``output`` breaks the method contract (shape, dtype, NaN/Inf, range), or None if it does not.

    Args:
        output: What :meth:`Method.upscale` returned.
        lr_shape: Shape of the input, ``(1, 3, h, w)``.
        scale: The method's scale factor.
    """
    import torch

    if not isinstance(output, torch.Tensor):
        return f"returned {type(output).__name__}, not a tensor"
    expected = (1, 3, lr_shape[2] * scale, lr_shape[3] * scale)
    if tuple(output.shape) != expected:
        return f"wrong shape {tuple(output.shape)}, expected {expected}"
    if not output.is_floating_point():
        return f"returned dtype {output.dtype}, expected a float tensor in [0, 1]"
    values = output.detach()
    low_tensor, high_tensor = torch.aminmax(values)  # one pass; NaN and Inf show up in the extremes
    low, high = float(low_tensor), float(high_tensor)
    if not (math.isfinite(low) and math.isfinite(high)):
        return describe_bad_values(values)
    if low < 0.0 or high > 1.0:
        return describe_bad_values(values)
    return None


def _where(flat_index: int, shape: tuple[int, ...]) -> str:
    """``channel c, y Y, x X`` of a flat index into a ``[1, C, H, W]`` (or any) tensor."""
    import numpy as np

    position = [int(i) for i in np.unravel_index(flat_index, shape)]
    if len(shape) == 4:
        return f"channel {position[1]}, y {position[2]}, x {position[3]}"
    return f"index {tuple(position)}"


def describe_bad_values(values: torch.Tensor, low: float = 0.0, high: float = 1.0) -> str | None:
    """One line on the non-finite or out-of-range values of ``values``: how many, the extremes with every digit
    (``repr`` of the float64 value), and where the first NaN/Inf and the worst excursions sit; None if all are fine.
    """
    import torch

    flat = values.detach().reshape(-1)
    shape = tuple(values.shape)
    nan, inf = torch.isnan(flat), torch.isinf(flat)
    if bool(nan.any()) or bool(inf.any()):
        first = int(torch.nonzero(nan | inf)[0])
        return (
            f"non-finite values: {int(nan.sum())} NaN, {int(inf.sum())} Inf of {flat.numel()} values; "
            f"first at {_where(first, shape)} ({float(flat[first])!r})"
        )
    below, above = flat < low, flat > high
    if not (bool(below.any()) or bool(above.any())):
        return None
    parts = []
    if bool(below.any()):
        index = int(torch.argmin(flat))
        parts.append(f"{int(below.sum())} below {low:g} (min {float(flat[index])!r} at {_where(index, shape)})")
    if bool(above.any()):
        index = int(torch.argmax(flat))
        parts.append(f"{int(above.sum())} above {high:g} (max {float(flat[index])!r} at {_where(index, shape)})")
    return f"values outside [{low:g}, {high:g}] ({values.dtype}): " + ", ".join(parts) + f" of {flat.numel()} values"
