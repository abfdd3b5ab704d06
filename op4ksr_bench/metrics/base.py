"""The metric contract.

A metric is a class with declared metadata (``name``, ``kind``, ``higher_is_better``, ``score_range``,
``default``, ``display_order``, ``backend``, ``licence``, ``weights``, ``ideal``) and a call on 8-bit images. The
class is the one place each of these facts lives: the default metric list, the native list, the leaderboard's
column order and the weights catalogue's "used by" are derived from the registered classes
(:mod:`op4ksr_bench.metrics`), and the contract tests run over every registered class. Preprocessing (colour
space, border crop, 4K policy) is a constructor argument, reported by :meth:`Metric.settings` and written into
every result.

A call returns a ``dict`` whose key ``name`` is the headline value; a metric may add detail values under
``"<name>.<detail>"`` keys (``pas.p16``, ``pas.period``), which results store beside the headline value.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np

Kind = Literal["FR", "NR"]
Policy = Literal["native", "tiled-mean", "resize"]


class Metric:
    """Base class for image-quality metrics.

    Class attributes:
        name: Registry name, also the headline key in results.
        kind: ``"FR"`` (needs a reference) or ``"NR"``.
        higher_is_better: Direction; the leaderboard reads it from here and nowhere else.
        score_range: ``(low, high)``, inclusive bounds no value can leave (``-inf``/``inf`` where there is none;
            learned scores without a bounded output layer are unbounded).
        default: Whether ``score`` computes it when no ``--metrics`` are given (and no suite lists metrics).
        display_order: Position of the metric's leaderboard column (1 first), or None: after the ordered
            columns, alphabetically. Registered classes declare ``name``, ``default``, ``display_order`` and
            ``score_range`` in their own body (never inherited; the contract test checks it).
        backend: ``"native"`` or the pinned backend, e.g. ``"pyiqa==0.1.16"``.
        licence: Licence of the implementation and weights; ``non_commercial`` flags restrictive ones.
        weights: Names of entries in the weights catalogue this metric needs (empty for native metrics).
        set_level: True for metrics computed over a whole set (update/compute), False for per-image calls.
        ideal: The value of an image without the effect the metric measures, when values on both sides of it
            are possible and neither side is better (``seam``: 0). None otherwise. When set, rank by the distance
            ``|value - ideal|`` (smaller is better): no value beyond the ideal is ever called best.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    higher_is_better: ClassVar[bool]
    score_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = None
    backend: ClassVar[str] = "native"
    licence: ClassVar[str] = "Apache-2.0"
    non_commercial: ClassVar[bool] = False
    weights: ClassVar[tuple[str, ...]] = ()
    set_level: ClassVar[bool] = False
    ideal: ClassVar[float | None] = None

    @classmethod
    def is_native(cls) -> bool:
        """Computed by this package's own code from no weight file: needs nothing downloaded, no torch model."""
        return cls.backend == "native" and not cls.weights

    def settings(self) -> dict[str, Any]:
        """The preprocessing and options in effect (JSON-serialisable), recorded with every value."""
        return {}

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        """Score one image.

        Args:
            pred: ``uint8`` ``H x W x 3`` RGB, the image under test.
            ref: ``uint8`` ``H x W x 3`` RGB reference of the same size for FR metrics, else None.

        Returns:
            ``{name: value, "<name>.<detail>": value, ...}``.
        """
        raise NotImplementedError
