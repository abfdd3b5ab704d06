"""Reuse of intermediate results between metrics scoring the same image objects, within one scoring call.

``score_images`` calls every metric on the same ``pred`` and ``ref`` arrays, and several metrics need the same
intermediate: ``pas`` and ``dpas`` both need PAS(SR); ``psnr-y`` and ``ssim-y`` both need the Y channel;
``ssim`` and ``ms-ssim`` both need the full-resolution SSIM pass. ``score_images`` opens a :func:`scope`, and
metrics fetch such results through :func:`current`; the memo lives for that call only (no module-level state
survives it). Outside a scope, :func:`current` gives an empty memo that remembers nothing beyond the call.

:class:`ImageMemo` keys results by object identity (a weak reference, so a result never keeps an image alive)
plus a cheap fingerprint (shape, dtype, data address and a checksum of a sparse sample of the pixels), which
catches the usual in-place modifications. An entry is dropped as soon as one of its images is collected.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

Value = TypeVar("Value")

SAMPLE_STEP = 61
"""Every 61st row and column enter the fingerprint's checksum (about 4,500 pixels of a 4096x4096 image)."""


def fingerprint(array: np.ndarray) -> tuple:
    """Shape, dtype, strides, data address and a sampled checksum of ``array`` (microseconds at 4K)."""
    sample = array[::SAMPLE_STEP, ::SAMPLE_STEP] if array.ndim >= 2 else array[::SAMPLE_STEP]
    return (
        array.shape,
        array.dtype.str,
        array.strides,
        array.__array_interface__["data"][0],
        hash(np.ascontiguousarray(sample).tobytes()),
    )


class ImageMemo:
    """Results computed from image arrays, remembered for the ``capacity`` most recent (arrays, key) pairs.

    Args:
        capacity: Entries kept (least recently stored dropped first).
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._entries: list[tuple[tuple[weakref.ref, ...], tuple, Hashable, Any]] = []

    def get(self, arrays: Sequence[np.ndarray], key: Hashable, compute: Callable[[], Value]) -> Value:
        """The remembered value for ``(arrays, key)``, or ``compute()`` (then remembered)."""
        prints = tuple(fingerprint(array) for array in arrays)
        for references, entry_prints, entry_key, value in self._entries:
            if (
                entry_key == key
                and len(references) == len(arrays)
                and all(reference() is array for reference, array in zip(references, arrays, strict=True))
                and entry_prints == prints
            ):
                return value
        value = compute()
        references = tuple(weakref.ref(array, self._forget) for array in arrays)
        self._entries = [*self._entries, (references, prints, key, value)][-self.capacity :]
        return value

    def clear(self) -> None:
        """Drop every entry."""
        self._entries = []

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, dead: weakref.ref) -> None:
        self._entries = [entry for entry in self._entries if all(reference() is not None for reference in entry[0])]


_SCOPE: contextvars.ContextVar[ImageMemo | None] = contextvars.ContextVar("op4ksr_bench_metric_memo", default=None)


@contextlib.contextmanager
def scope(capacity: int = 16) -> Iterator[ImageMemo]:
    """Share intermediate results between the metrics called inside this block (one scoring call)."""
    memo = ImageMemo(capacity)
    token = _SCOPE.set(memo)
    try:
        yield memo
    finally:
        _SCOPE.reset(token)
        memo.clear()


def current() -> ImageMemo:
    """The memo of the enclosing :func:`scope`, or a new empty one (shared with nobody) outside any scope."""
    memo = _SCOPE.get()
    return memo if memo is not None else ImageMemo()
