"""The inference dtypes a method may be asked for (``--dtype``) and their torch types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from op4ksr_bench.errors import UsageError

if TYPE_CHECKING:
    import torch

DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def check_dtype(name: str) -> str:
    """``name`` if it is one of :data:`DTYPES`.

    Raises:
        UsageError: any other name (one line listing the supported ones).
    """
    if name not in DTYPES:
        raise UsageError(f"--dtype {name!r} is not one of {', '.join(DTYPES)}")
    return name


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"`` -> ``torch.float32``, for the names of :data:`DTYPES` (else :class:`UsageError`)."""
    import torch

    return getattr(torch, check_dtype(name))
