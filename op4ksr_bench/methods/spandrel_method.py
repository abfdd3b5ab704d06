"""``spandrel:PATH``: any single-image super-resolution weights file that spandrel can load.

ESRGAN/Real-ESRGAN (RRDBNet), SwinIR, HAT, DAT, OmniSR, SPAN, ... in ``.pth``, ``.safetensors``, ``.ckpt`` or
``.pt`` form. spandrel identifies the architecture from the state dict and builds the network; we run its
descriptor, which clamps the output to ``[0, 1]`` (as the methods' official inference scripts do).

What we do NOT let spandrel do silently: spandrel pads an input whose size does not meet the architecture's
size requirements (e.g. SwinIR's window multiple). Here such an input is an error unless the user asks for
it with ``--opt pad=true``; the option is recorded with the results.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.methods.base import Family, Method, MethodCard, WeightRef
from op4ksr_bench.methods.dtypes import torch_dtype

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

FAMILIES = ("regression", "gan")


def load_descriptor(source: Path | dict, device: str, dtype: str, name: str):
    """Load a spandrel ``ImageModelDescriptor`` from a weights file or a state dict, in eval mode.

    Raises:
        UsageError: the file is not a single-image model spandrel supports, or the dtype is unsupported.
    """
    import spandrel

    loader = spandrel.ModelLoader(device=device)
    try:
        if isinstance(source, dict):
            descriptor = loader.load_from_state_dict(source)
        else:
            descriptor = loader.load_from_file(source)
    except spandrel.UnsupportedModelError as error:
        raise UsageError(f"{name}: spandrel does not recognise this architecture ({error})") from error
    except (ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as error:  # unpickling: refused code
        raise UsageError(f"{name}: cannot load with spandrel ({type(error).__name__}: {error})") from error
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UsageError(f"{name}: is a {type(descriptor).__name__} (e.g. inpainting), not a super-resolution model")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise UsageError(
            f"{name}: has {descriptor.input_channels} input / {descriptor.output_channels} output channels; "
            "an RGB model (3 -> 3) is required"
        )
    try:
        descriptor.to(dtype=torch_dtype(dtype))
    except spandrel.UnsupportedDtypeError as error:
        raise UsageError(f"{name}: {error}; use --dtype float32") from error
    descriptor.eval()
    return descriptor


class SpandrelMethod(Method):
    """A weights file run through spandrel.

    Args:
        path: The weights file (``spandrel:PATH`` on the command line).
        pad: Let spandrel pad inputs that miss the architecture's size requirements (off: such inputs fail).
        channels_last: Use the channels-last memory format (faster convolutions on most CPUs and GPUs).
        family: ``regression`` or ``gan`` (spandrel cannot tell how the weights were trained).
        licence: Licence of the weights, for the results (default: ``unknown``).
    """

    card = MethodCard(
        name="spandrel",
        display_name="spandrel",
        paper="",
        licence="unknown",
        family="regression",
        steps=1,
        scales=(1, 2, 3, 4, 8),
    )

    local_options = ("device", "path")  # the file's sha256 is an option too

    @classmethod
    def family_arguments(cls, argument: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"path": argument, **options}

    def __init__(
        self,
        scale: int = 4,
        device: str = "cpu",
        dtype: str = "float32",
        path: str | Path | None = None,
        pad: bool = False,
        channels_last: bool = True,
        family: str = "regression",
        licence: str = "unknown",
    ) -> None:
        if path is None:
            raise UsageError("spandrel needs a weights file: --method spandrel:PATH")
        path = Path(path).expanduser()
        if not path.is_file():
            raise WeightsMissingError(f"{path}: weights file not found (spandrel:PATH must name an existing file)")
        if family not in FAMILIES:
            raise UsageError(f"--opt family={family!r} is not one of {', '.join(FAMILIES)}")
        self.path = path.resolve()
        self.pad = bool(pad)
        self.channels_last = bool(channels_last)
        self.sha256 = sha256_file(self.path)
        self.descriptor = load_descriptor(self.path, device, dtype, str(self.path))
        family_name: Family = family  # type: ignore[assignment]
        self.card = MethodCard(
            name=f"spandrel:{self.path.name}",
            display_name=f"{self.descriptor.architecture.name} ({self.path.name})",
            paper="",
            licence=licence,
            family=family_name,
            steps=1,
            patch_free=True,
            scales=(self.descriptor.scale,),
            weights=(WeightRef(name=str(self.path), sha256=self.sha256),),
        )
        super().__init__(scale=scale, device=device, dtype=dtype)
        self._finish_setup()

    def _finish_setup(self) -> None:
        import torch

        if self.channels_last:
            self.descriptor.model.to(memory_format=torch.channels_last)
        self._dtype = torch_dtype(self.dtype)

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        import torch

        _, _, height, width = lr.shape
        requirements = self.descriptor.size_requirements
        if not self.pad and not requirements.check(width, height):
            raise ValueError(
                f"{width}x{height} input does not meet {self.card.display_name}'s size requirements "
                f"(multiple of {requirements.multiple_of}, minimum {requirements.minimum}, square "
                f"{requirements.square}); pass --opt pad=true to let spandrel pad it, or tile it"
            )
        image = lr.to(device=self.device, dtype=self._dtype)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            output = self.descriptor(image)
        return output.float().contiguous()

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "path": str(self.path),
            "sha256": self.sha256,
            "architecture": self.descriptor.architecture.id,
            "pad": self.pad,
            "channels_last": self.channels_last,
            "output_clamp": [0, 1],
        }
