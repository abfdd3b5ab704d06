"""The one check before a full-reference comparison: a reference is there and has the prediction's size.

Nothing is ever resized: a size mismatch is an :class:`~op4ksr_bench.errors.ImageError` naming both sizes.
"""

from __future__ import annotations

from typing import Any

from op4ksr_bench.errors import ImageError


def check_same_size(pred: Any, ref: Any, pred_name: str = "prediction", ref_name: str = "the reference") -> None:
    """Raise unless the ``H x W x C`` arrays ``pred`` and ``ref`` have the same shape.

    Raises:
        ImageError: ``<pred_name> is WxH but <ref_name> is WxH; ...`` (one line).
    """
    if pred.shape != ref.shape:
        raise ImageError(
            f"{pred_name} is {pred.shape[1]}x{pred.shape[0]} but {ref_name} is {ref.shape[1]}x{ref.shape[0]}; "
            "full-reference metrics need equal sizes (nothing is resized)"
        )


def check_reference(metric: str, pred: Any, ref: Any | None) -> None:
    """Raise unless full-reference metric ``metric`` got a reference of ``pred``'s size.

    Raises:
        ImageError: ``ref`` is None, or its size differs (see :func:`check_same_size`).
    """
    if ref is None:
        raise ImageError(f"{metric} is a full-reference metric and needs a reference image")
    check_same_size(pred, ref, f"{metric}: the prediction")
