"""RFR: RoPE base frequency rescaling, applied through diffusers' Flux position embedding.

Flux rotates each attention head's channels by position: the head's ``attention_head_dim`` channels are split
into axes (Flux: 16 for the unused time axis, 56 for rows, 56 for columns). Along an axis of ``d`` channels,
pair ``i`` (``0 <= i < d / 2``) turns by ``position * theta ** (-2 i / d)`` radians, with base ``theta`` = 10000.

RFR replaces the base (the project's own design; the paper names RFR but does not publish it):

- ``"none"``: ``theta' = theta`` (stock Flux);
- ``"base"``: ``theta' = theta * s`` on every axis;
- ``"ntk"``: ``theta' = theta * s ** (d / (d - 2))`` per axis (NTK-aware scaling: the lowest frequency is
  divided by exactly ``s`` while the highest, ``i = 0``, is unchanged);
- ``"pi"``: position interpolation, the usual comparison for RFR: the base is kept and every position is divided
  by ``s``, so every frequency, the highest included, is divided by ``s``.

In diffusers 0.42 ``FluxPosEmbed`` takes ``theta`` in ``__init__`` but it is not a config field of
``FluxTransformer2DModel`` (the model always builds ``theta=10000``), so :func:`apply_rfr` swaps in
:class:`RescaledFluxPosEmbed`, a ``FluxPosEmbed`` whose base is set explicitly per axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from diffusers.models.transformers.transformer_flux import FluxPosEmbed

RfrMode = Literal["none", "base", "ntk", "pi"]
RFR_MODES: tuple[str, ...] = ("none", "base", "ntk", "pi")


def rescaled_thetas(theta: float, axes_dim: Sequence[int], mode: RfrMode, scale: float) -> tuple[float, ...]:
    """The RoPE base of every axis after RFR.

    Args:
        theta: Stock base (10000 for Flux).
        axes_dim: Channels per axis (even numbers summing to the head dimension).
        mode: ``"none"``, ``"base"``, ``"ntk"`` or ``"pi"``.
        scale: The factor ``s`` (> 0); ignored for ``"none"``.

    Returns:
        One base per axis (``"pi"`` keeps the base: it scales positions, see :func:`apply_rfr`).
    """
    if mode not in RFR_MODES:
        raise ValueError(f"unknown RFR mode {mode!r}; use one of {', '.join(RFR_MODES)}")
    if scale <= 0:
        raise ValueError(f"RFR scale must be positive, got {scale}")
    if mode in ("none", "pi"):
        return tuple(float(theta) for _ in axes_dim)
    if mode == "base":
        return tuple(float(theta) * scale for _ in axes_dim)
    thetas = []
    for dim in axes_dim:
        if dim <= 2:  # one frequency pair: NTK leaves it at the base (the exponent would divide by zero)
            thetas.append(float(theta))
        else:
            thetas.append(float(theta) * scale ** (dim / (dim - 2)))
    return tuple(thetas)


class RescaledFluxPosEmbed(FluxPosEmbed):
    """``FluxPosEmbed`` with one explicit RoPE base per axis.

    Args:
        axes_theta: Base of each axis (see :func:`rescaled_thetas`).
        axes_dim: Channels of each axis.
        position_scale: Every position is multiplied by this before rotating (``1 / s`` for ``"pi"``; 1: off).

    Calling it on ``ids [S, n_axes]`` returns ``(cos, sin)``, each ``[S, sum(axes_dim)]`` float32, exactly as
    ``FluxPosEmbed`` does; with all bases equal to ``theta`` the output is bit-identical to the stock module.
    """

    def __init__(self, axes_theta: Sequence[float], axes_dim: Sequence[int], position_scale: float = 1.0):
        if len(axes_theta) != len(axes_dim):
            raise ValueError(f"need one theta per axis: {len(axes_theta)} thetas for {len(axes_dim)} axes")
        super().__init__(theta=axes_theta[0], axes_dim=list(axes_dim))
        self.axes_theta = tuple(float(value) for value in axes_theta)
        self.position_scale = float(position_scale)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = ids.float()
        if self.position_scale != 1.0:
            positions = positions * self.position_scale
        # float64 as in diffusers (mps/npu fall back to float32 there; this reference targets CPU and CUDA)
        freqs_dtype = torch.float32 if ids.device.type in ("mps", "npu") else torch.float64
        cos_parts, sin_parts = [], []
        for axis in range(ids.shape[-1]):
            cos, sin = get_1d_rotary_pos_embed(
                self.axes_dim[axis],
                positions[:, axis],
                theta=self.axes_theta[axis],
                repeat_interleave_real=True,
                use_real=True,
                freqs_dtype=freqs_dtype,
            )
            cos_parts.append(cos)
            sin_parts.append(sin)
        return torch.cat(cos_parts, dim=-1).to(ids.device), torch.cat(sin_parts, dim=-1).to(ids.device)


def apply_rfr(transformer: torch.nn.Module, mode: RfrMode, scale: float, theta: float = 10000.0) -> tuple[float, ...]:
    """Set the transformer's RoPE bases per RFR; returns the per-axis bases now in effect.

    Args:
        transformer: A ``FluxTransformer2DModel`` (its ``pos_embed`` is replaced in place).
        mode: RFR mode.
        scale: RFR factor ``s``.
        theta: Stock base.
    """
    axes_dim = list(transformer.pos_embed.axes_dim)
    thetas = rescaled_thetas(theta, axes_dim, mode, scale)
    position_scale = 1.0 / scale if mode == "pi" else 1.0
    transformer.pos_embed = RescaledFluxPosEmbed(thetas, axes_dim, position_scale)
    return thetas


def axis_frequencies(pos_embed: FluxPosEmbed) -> list[torch.Tensor]:
    """Angular frequency (radians per token) of every rotary pair, per axis, recovered from the module's output.

    Evaluates the embedding at positions 0 and 1 on every axis and reads the rotation angle of position 1, so it
    measures what the module actually applies (used by the tests and the docs).

    Returns:
        One float64 tensor ``[d / 2]`` per axis.
    """
    n_axes = len(pos_embed.axes_dim)
    ids = torch.zeros(2, n_axes)
    ids[1] = 1.0
    cos, sin = pos_embed(ids)
    angles = torch.atan2(sin[1].double(), cos[1].double())[0::2]  # channels are repeat-interleaved in pairs
    frequencies, start = [], 0
    for dim in pos_embed.axes_dim:
        frequencies.append(angles[start // 2 : (start + dim) // 2])
        start += dim
    return frequencies
