"""Classical resampling: ``bicubic`` and ``lanczos``, exact and documented.

Both are separable convolutions computed here in torch (float32, on the method's device), with the
coefficients of Pillow's ``Image.resize`` (``libImaging/Resample.c``), which the tests check to 1e-5 against
Pillow itself (float ``F`` mode, so no 8-bit rounding in between):

* output pixel ``x`` samples the input at ``center = (x + 0.5) * in_size / out_size`` (pixel centres aligned,
  ``align_corners=False``);
* taps ``j`` with ``|j + 0.5 - center| < support`` get weight ``kernel((j + 0.5 - center) / filter_scale)``,
  where ``filter_scale = max(in_size / out_size, 1)`` (the kernel is stretched when downscaling: this is
  the antialiasing; for super-resolution the scale is above 1 and no antialiasing applies);
* taps outside the image are dropped and the remaining weights renormalised to sum to one (Pillow's border
  rule; MATLAB's ``imresize`` mirrors instead, which differs only within ``support`` pixels of the border);
* the result is clamped to ``[0, 1]`` (cubic and Lanczos kernels overshoot near edges), as the method
  contract requires.

Kernels: ``bicubic`` is Keys' cubic convolution with ``a = -0.5`` by default (Pillow, MATLAB; ``--opt
a=-0.75`` gives the OpenCV / ``torch.nn.functional.interpolate`` kernel); ``lanczos`` is the windowed sinc
``sinc(x) sinc(x / lobes)`` with ``lobes = 3`` (Pillow's ``LANCZOS``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.base import Method, MethodCard

if TYPE_CHECKING:
    import torch

SCALES = (1, 2, 3, 4, 8, 16)


def cubic_kernel(x, a: float = -0.5):
    """Keys' cubic convolution kernel with parameter ``a`` (support 2); ``x`` a number or numpy array."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    outer = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


def lanczos_kernel(x, lobes: int = 3):
    """Lanczos window ``sinc(x) * sinc(x / lobes)`` for ``-lobes <= x < lobes``, else 0; ``x`` number or array."""
    x = np.asarray(x, dtype=np.float64)
    return np.where((x >= -lobes) & (x < lobes), np.sinc(x) * np.sinc(x / lobes), 0.0)


def resample_coefficients(in_size: int, out_size: int, kernel, support: float) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices and normalised weights for each output pixel along one axis (Pillow's rule).

    Args:
        in_size: Input length in pixels.
        out_size: Output length in pixels.
        kernel: The 1-D kernel, a vectorised function of the distance in input pixels (at scale 1).
        support: Half-width of the kernel at scale 1.

    Returns:
        ``(indices, weights)``, both ``[out_size, taps]``: output pixel ``x`` is the sum of input pixels
        ``indices[x]`` times ``weights[x]`` (unused taps have weight 0 and index 0); each row sums to one.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = support * filter_scale
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    first = np.maximum(np.trunc(centers - support + 0.5).astype(np.int64), 0)  # C casts truncate toward zero
    last = np.minimum(np.trunc(centers + support + 0.5).astype(np.int64), in_size)
    width = int((last - first).max())
    taps = first[:, None] + np.arange(width)[None, :]
    valid = taps < last[:, None]
    weights = np.where(valid, kernel((taps - centers[:, None] + 0.5) / filter_scale), 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, totals, out=weights, where=totals != 0.0)
    return np.where(valid, taps, 0), weights


def resample_axis(image: torch.Tensor, dim: int, out_size: int, kernel, support: float) -> torch.Tensor:
    """Resample ``image`` along ``dim`` to ``out_size`` with the separable filter ``kernel``.

    Args:
        image: float tensor of any shape.
        dim: Axis to resample.
        out_size: New length of that axis.
        kernel: Vectorised 1-D kernel (see :func:`resample_coefficients`).
        support: Kernel half-width at scale 1.

    Returns:
        float32 tensor with ``shape[dim] == out_size``.
    """
    import torch

    # computed per call, not remembered: at 1024 -> 4096 px it takes under 0.1 % of the resampling's time
    indices, weights = resample_coefficients(image.shape[dim], out_size, kernel, support)
    index = torch.from_numpy(indices).to(image.device)
    weight = torch.from_numpy(weights).to(device=image.device, dtype=torch.float32)
    shape = [1] * image.ndim
    shape[dim] = out_size
    result = image.index_select(dim, index[:, 0]).mul_(weight[:, 0].reshape(shape))
    for tap in range(1, index.shape[1]):  # one gather per tap keeps memory at two output-sized buffers
        result.addcmul_(image.index_select(dim, index[:, tap]), weight[:, tap].reshape(shape))
    return result


class _Resampling(Method):
    """Shared code of the two resampling methods: separable filter, then clamp to [0, 1]."""

    support: float

    def __init__(self, scale: int = 4, device: str = "cpu", dtype: str = "float32") -> None:
        super().__init__(scale=scale, device=device, dtype=dtype)
        if dtype != "float32":
            raise UsageError(f"{self.card.name} computes in float32 only; drop --dtype {dtype}")

    kernel: Any  # a hashable vectorised kernel (functools.partial), set by the subclass

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        image = lr.to(device=self.device, dtype=self._float32()).contiguous()  # gathers on views are slow
        _, _, height, width = image.shape
        # Both passes gather whole rows (dim 2), several times faster than gathering columns: the width pass
        # runs on the transposed intermediate and the result is returned as a transposed view.
        image = resample_axis(image, 2, height * self.scale, self.kernel, self.support)
        image = resample_axis(image.transpose(2, 3).contiguous(), 2, width * self.scale, self.kernel, self.support)
        return image.clamp_(0.0, 1.0).transpose(2, 3)

    @staticmethod
    def _float32():
        import torch

        return torch.float32


class BicubicMethod(_Resampling):
    """Bicubic upscaling: Keys' cubic kernel (``a = -0.5`` by default), Pillow's coefficients and borders.

    Args:
        a: Cubic kernel parameter; -0.5 (Pillow, MATLAB) or -0.75 (OpenCV, torch). Must be in ``[-1, 0)``.
    """

    card = MethodCard(
        name="bicubic",
        display_name="Bicubic",
        paper="Keys, Cubic convolution interpolation for digital image processing, IEEE TASSP 1981",
        licence="Apache-2.0",
        family="interpolation",
        steps=0,
        patch_free=True,
        scales=SCALES,
    )
    support = 2.0

    def __init__(self, scale: int = 4, device: str = "cpu", dtype: str = "float32", a: float = -0.5) -> None:
        super().__init__(scale=scale, device=device, dtype=dtype)
        if not isinstance(a, int | float) or isinstance(a, bool) or not -1.0 <= a < 0.0:
            raise UsageError(f"bicubic option a={a!r} must be a number in [-1, 0) (-0.5 Pillow/MATLAB, -0.75 OpenCV)")
        self.a = float(a)
        self.kernel = functools.partial(cubic_kernel, a=self.a)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "a": self.a, "kernel": "keys-cubic", "border": "renormalize", "clamp": [0, 1]}


class LanczosMethod(_Resampling):
    """Lanczos upscaling: windowed sinc with ``lobes`` lobes (3 by default, Pillow's ``LANCZOS``).

    Args:
        lobes: Number of lobes (kernel half-width in input pixels), 2 to 8.
    """

    card = MethodCard(
        name="lanczos",
        display_name="Lanczos-3",
        paper="Duchon, Lanczos filtering in one and two dimensions, J. Appl. Meteorology 1979",
        licence="Apache-2.0",
        family="interpolation",
        steps=0,
        patch_free=True,
        scales=SCALES,
    )

    def __init__(self, scale: int = 4, device: str = "cpu", dtype: str = "float32", lobes: int = 3) -> None:
        super().__init__(scale=scale, device=device, dtype=dtype)
        if not isinstance(lobes, int) or isinstance(lobes, bool) or not 2 <= lobes <= 8:
            raise UsageError(f"lanczos option lobes={lobes!r} must be an integer from 2 to 8")
        self.lobes = lobes
        self.support = float(lobes)
        self.kernel = functools.partial(lanczos_kernel, lobes=lobes)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "lobes": self.lobes, "kernel": "lanczos", "border": "renormalize", "clamp": [0, 1]}
