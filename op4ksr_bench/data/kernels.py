"""Blur kernels of the Real-ESRGAN degradation model (Wang et al., 2021), in numpy.

Every kernel is a ``float32`` ``k x k`` array (``k`` odd) that sums to 1. Sigmas are in pixels of the image the
kernel is applied to; ``rotation`` is in radians; ``cutoff`` (sinc) is in radians per pixel, ``(0, pi]``.

Kernel families (names as in Real-ESRGAN's ``kernel_list``):

- ``iso`` / ``aniso``: Gaussian ``exp(-0.5 * d)`` with ``d = x^T S^-1 x``.
- ``generalized_iso`` / ``generalized_aniso``: ``exp(-0.5 * d ** beta)``; heavier (``beta < 1``) or lighter
  (``beta > 1``) tails than a Gaussian.
- ``plateau_iso`` / ``plateau_aniso``: ``1 / (1 + d ** beta)``; a flat top with a slow fall-off.
- ``sinc``: the 2-D circular low-pass (ringing and overshoot of over-sharpened or band-limited images).
"""

from __future__ import annotations

import math

import numpy as np

KERNEL_FAMILIES = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)


def _covariance(sigma_x: float, sigma_y: float, rotation: float) -> np.ndarray:
    rotation_matrix = np.array(
        [[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]], dtype=np.float64
    )
    diagonal = np.diag([sigma_x**2, sigma_y**2])
    return rotation_matrix @ diagonal @ rotation_matrix.T


def _squared_mahalanobis(size: int, sigma_x: float, sigma_y: float, rotation: float) -> np.ndarray:
    half = size // 2
    axis = np.arange(-half, half + 1, dtype=np.float64)
    grid_x, grid_y = np.meshgrid(axis, axis)
    points = np.stack([grid_x, grid_y], axis=-1)
    inverse = np.linalg.inv(_covariance(sigma_x, sigma_y, rotation))
    return np.einsum("...i,ij,...j->...", points, inverse, points)


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, rotation: float, beta: float = 1.0) -> np.ndarray:
    """(Generalised) Gaussian kernel ``exp(-0.5 * d ** beta)``; ``beta = 1`` is the ordinary Gaussian."""
    distance = _squared_mahalanobis(size, sigma_x, sigma_y, rotation)
    return _normalised(np.exp(-0.5 * np.power(distance, beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, rotation: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel ``1 / (1 + d ** beta)``."""
    distance = _squared_mahalanobis(size, sigma_x, sigma_y, rotation)
    return _normalised(1.0 / (np.power(distance, beta) + 1.0))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass ``cutoff * J1(cutoff * r) / (2 pi r)`` of odd ``size``; ``cutoff`` in radians/pixel."""
    from scipy.special import j1

    half = size // 2
    axis = np.arange(-half, half + 1, dtype=np.float64)
    grid_x, grid_y = np.meshgrid(axis, axis)
    radius = np.hypot(grid_x, grid_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * j1(cutoff * radius) / (2 * np.pi * radius)
    kernel[half, half] = cutoff**2 / (4 * np.pi)
    return _normalised(kernel)


def build_kernel(family: str, size: int, sigma_x: float, sigma_y: float, rotation: float, beta: float) -> np.ndarray:
    """Kernel of one of :data:`KERNEL_FAMILIES` (the ``iso`` variants ignore ``sigma_y`` and ``rotation``)."""
    if family.endswith("_iso") or family == "iso":
        sigma_y, rotation = sigma_x, 0.0
    if family in ("iso", "aniso"):
        return gaussian_kernel(size, sigma_x, sigma_y, rotation, 1.0)
    if family.startswith("generalized"):
        return gaussian_kernel(size, sigma_x, sigma_y, rotation, beta)
    if family.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, rotation, beta)
    raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(KERNEL_FAMILIES)}")
