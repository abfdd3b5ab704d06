"""The F16 VAE: diffusers' ``AutoencoderKL`` with the SC-VAE layout (16x spatial compression, 16 channels).

The Flux VAE compresses 8x (three stride-2 downsamplers). The SC-VAE layout published with Diffusion-4K
(arXiv 2506.01331) and post-trained by UltraFlux (arXiv 2511.18050) adds one more factor of two *without
changing any weight shape*:

- encoder: the first 3x3 convolution (``encoder.conv_in``) has stride 2;
- decoder: after the last up block, ``conv_norm_out`` and the activation run at half resolution, then a
  nearest-neighbour x2 upsample, then the 3x3 ``decoder.conv_out``.

Because no shape changes, the state-dict keys are exactly those of the Flux VAE, and the config adds one field,
``stride`` (2 for F16, 1 for the stock F8 layout), the name the published SC-VAE config uses. Published folders
that say ``"_class_name": "AutoencoderKL"`` therefore load into :class:`F16AutoencoderKL` unchanged.

**Partitioned last stage.** SC-VAE runs (and was trained with) its last stage in four quadrants: each quadrant
of the half-resolution activation takes one extra row/column from its neighbour on the inner side and one zero
row/column on the outer side, is upsampled x2 and convolved, and the convolution's first and last output
rows/columns are dropped. Worked out, that is one convolution *without* padding over the upsampled activation
padded with two zero rows on top and two zero columns on the left: output pixel ``(y, x)`` sees upsampled rows
``y - 2 .. y`` where the plain path sees ``y - 1 .. y + 1`` (the plain output shifted by one pixel diagonally,
with other borders). :func:`partitioned_last_stage` computes exactly that in as many parts as keep every tensor
below 2^30 elements (four at 4096x4096, where the plain path's upsampled activation has 4096 * 4096 * 128 = 2^31
elements, past 32-bit indexing). ``F16AutoencoderKL.partitioned_decode`` selects it (the model config's
``partitioned_decode``: on for real SC-VAE weights, off for ``nano``, which was trained on the plain path).

**Normalisation** (``norm_type``). The stock layout normalises with ``GroupNorm``, whose statistics are taken
over the whole image: the same region then decodes differently as a crop or inside a 4K frame, and with one
channel per group (the ``nano`` widths) each channel's DC is removed. ``norm_type="pixel"`` replaces every
``GroupNorm`` of the encoder and decoder by :class:`PixelNorm` (per-position normalisation over the channels,
same ``weight``/``bias`` keys): the VAE is then a function of a pixel's receptive field only, so a region gives
the same latents and the same decoded pixels in a crop as inside a larger image (tested). Published SC-VAE
weights use ``"group"`` (the default, and what a ``config.json`` without the field means).

**Tiling.** diffusers' ``enable_tiling`` sizes tiles for the F8 layout and would blend tiles of an F16 encoder
at the wrong latent scale; it is refused (encode and decode whole: the model is patch-free by design).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import Decoder
from torch import nn

PART_ELEMENTS = 2**30
"""Largest tensor (elements) a part of :func:`partitioned_last_stage` may create: half of the 32-bit index limit."""


def partition_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``[start, end)`` ranges covering ``0..length``, sizes differing by at most one."""
    edges = [round(index * length / parts) for index in range(parts + 1)]
    return [(edges[index], edges[index + 1]) for index in range(parts)]


def partitioned_last_stage(conv_out: nn.Conv2d, sample: torch.Tensor, max_elements: int = PART_ELEMENTS):
    """SC-VAE's partitioned tail on the half-resolution activation ``sample [B, C, h, w]`` -> ``[B, 3, 2h, 2w]``.

    Equal to ``conv(pad(nearest_x2(sample), top=2, left=2), padding=0)`` (see the module docstring), computed in
    ``n x n`` parts (``n >= 2``: the quadrants SC-VAE uses, more when a quadrant would exceed ``max_elements``).
    """
    batch, channels, height, width = sample.shape
    parts = 2
    while batch * channels * (2 * (-(-height // parts) + 1)) * (2 * (-(-width // parts) + 1)) > max_elements:
        parts += 1
    rows = []
    for top, bottom in partition_bounds(height, parts):
        pieces = []
        for left, right in partition_bounds(width, parts):
            # the row/column before the part (or a zero one at the image edge) feeds its first output row/column
            piece = sample[:, :, max(top - 1, 0) : bottom, max(left - 1, 0) : right]
            piece = F.pad(piece, (1 if left == 0 else 0, 0, 1 if top == 0 else 0, 0))
            piece = F.interpolate(piece, scale_factor=2, mode="nearest")
            pieces.append(F.conv2d(piece, conv_out.weight, conv_out.bias))
        rows.append(torch.cat(pieces, dim=3))
    return torch.cat(rows, dim=2)


def _decode_with_final_upsample(
    decoder: Decoder, sample: torch.Tensor, stride: int, partitioned: bool = False
) -> torch.Tensor:
    """diffusers' ``Decoder.forward`` with the SC-VAE tail: norm, act, nearest x``stride`` upsample, 3x3 conv."""
    sample = decoder.conv_in(sample)
    if torch.is_grad_enabled() and decoder.gradient_checkpointing:
        sample = decoder._gradient_checkpointing_func(decoder.mid_block, sample, None)
        for up_block in decoder.up_blocks:
            sample = decoder._gradient_checkpointing_func(up_block, sample, None)
    else:
        sample = decoder.mid_block(sample, None)
        for up_block in decoder.up_blocks:
            sample = up_block(sample, None)
    sample = decoder.conv_norm_out(sample)
    sample = decoder.conv_act(sample)
    if stride == 2 and partitioned:
        return partitioned_last_stage(decoder.conv_out, sample)
    if stride > 1:
        sample = F.interpolate(sample, scale_factor=stride, mode="nearest")
    return decoder.conv_out(sample)


NORM_TYPES = ("group", "pixel")


class PixelNorm(nn.Module):
    """Per-position normalisation over the channels (a LayerNorm over ``C`` of ``[B, C, H, W]``).

    Drop-in for ``nn.GroupNorm(groups, C)``: the same ``weight`` and ``bias`` parameters (shape ``[C]``), but
    no statistic is shared between positions, so the output at a pixel does not depend on the image size.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.num_channels = int(num_channels)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.pow(2).mean(dim=1, keepdim=True)
        normalised = centred * torch.rsqrt(variance + self.eps)
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


def use_pixel_norm(module: nn.Module) -> int:
    """Replace every ``nn.GroupNorm`` inside ``module`` by a :class:`PixelNorm` of the same width; returns how many."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.GroupNorm):
            setattr(module, name, PixelNorm(child.num_channels, child.eps))
            replaced += 1
        else:
            replaced += use_pixel_norm(child)
    return replaced


class F16AutoencoderKL(AutoencoderKL):
    """``AutoencoderKL`` with the SC-VAE stride (``stride=2``: 16x compression with the Flux block layout).

    Args are those of :class:`diffusers.AutoencoderKL` plus ``stride`` (the first encoder conv's stride and the
    decoder's final nearest upsample factor; 1 gives the stock layout) and ``norm_type`` (``group``: the stock
    ``GroupNorm``; ``pixel``: :class:`PixelNorm`, independent of the image size; see the module docstring).
    Images are ``[B, 3, H, W]`` in ``[-1, 1]`` with ``H, W`` multiples of :attr:`spatial_compression`; latents
    are ``[B, latent_channels, H / c, W / c]``.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 32,
        scaling_factor: float = 0.18215,
        shift_factor: float | None = None,
        latents_mean: tuple[float, ...] | None = None,
        latents_std: tuple[float, ...] | None = None,
        force_upcast: bool = True,
        use_quant_conv: bool = True,
        use_post_quant_conv: bool = True,
        mid_block_add_attention: bool = True,
        stride: int = 2,
        norm_type: str = "group",
    ):
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            act_fn=act_fn,
            latent_channels=latent_channels,
            norm_num_groups=norm_num_groups,
            sample_size=sample_size,
            scaling_factor=scaling_factor,
            shift_factor=shift_factor,
            latents_mean=latents_mean,
            latents_std=latents_std,
            force_upcast=force_upcast,
            use_quant_conv=use_quant_conv,
            use_post_quant_conv=use_post_quant_conv,
            mid_block_add_attention=mid_block_add_attention,
        )
        if stride not in (1, 2):
            raise ValueError(f"F16AutoencoderKL stride must be 1 (F8 layout) or 2 (SC-VAE F16 layout), got {stride}")
        old = self.encoder.conv_in
        # Same weight shape as the stock conv, so published keys load; only the stride differs.
        self.encoder.conv_in = nn.Conv2d(old.in_channels, old.out_channels, kernel_size=3, stride=stride, padding=1)
        self.stride = stride
        if norm_type not in NORM_TYPES:
            raise ValueError(f"F16AutoencoderKL norm_type must be one of {', '.join(NORM_TYPES)}, got {norm_type!r}")
        if norm_type == "pixel":
            use_pixel_norm(self.encoder)
            use_pixel_norm(self.decoder)
        self.partitioned_decode = False  # OP4KSR sets it from its config (see the module docstring)

    @property
    def spatial_compression(self) -> int:
        """Pixels per latent cell along each axis (16 for the F16 layout with four blocks)."""
        return self.stride * 2 ** (len(self.config.block_out_channels) - 1)

    def encode_mean(self, image: torch.Tensor) -> torch.Tensor:
        """Deterministic encoding: the posterior mean, ``[B, C, H / c, W / c]`` (no sampling, no scaling)."""
        moments = self.encoder(image)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, _ = torch.chunk(moments, 2, dim=1)
        return mean

    def decode_latents(self, latents: torch.Tensor, partitioned: bool | None = None) -> torch.Tensor:
        """Decode ``[B, C, h, w]`` latents to ``[B, 3, h * c, w * c]`` images in (about) ``[-1, 1]``.

        ``partitioned``: SC-VAE's partitioned last stage (default: :attr:`partitioned_decode`).
        """
        if self.post_quant_conv is not None:
            latents = self.post_quant_conv(latents)
        partitioned = self.partitioned_decode if partitioned is None else partitioned
        return _decode_with_final_upsample(self.decoder, latents, self.stride, partitioned)

    def enable_tiling(self, *args, **kwargs) -> None:
        """Refused: diffusers' tiles are sized for the F8 layout (see the module docstring)."""
        from op4ksr_bench.errors import UsageError

        raise UsageError(
            "F16AutoencoderKL does not tile: diffusers' tile sizes assume 8x compression and would encode an F16 "
            "VAE at the wrong latent scale; encode and decode whole (the decode is partitioned to stay in memory)"
        )

    def _decode(self, z: torch.Tensor, return_dict: bool = True):
        """Route diffusers' ``decode`` through the SC-VAE tail so ``vae.decode(z).sample`` is also correct."""
        from diffusers.models.autoencoders.vae import DecoderOutput

        decoded = self.decode_latents(z)
        return DecoderOutput(sample=decoded) if return_dict else (decoded,)
