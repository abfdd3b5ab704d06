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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import Decoder
from torch import nn


def _decode_with_final_upsample(decoder: Decoder, sample: torch.Tensor, stride: int) -> torch.Tensor:
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
    if stride > 1:
        sample = F.interpolate(sample, scale_factor=stride, mode="nearest")
    return decoder.conv_out(sample)


class F16AutoencoderKL(AutoencoderKL):
    """``AutoencoderKL`` with the SC-VAE stride (``stride=2``: 16x compression with the Flux block layout).

    Args are those of :class:`diffusers.AutoencoderKL` plus ``stride`` (the first encoder conv's stride and the
    decoder's final nearest upsample factor; 1 gives the stock layout). Images are ``[B, 3, H, W]`` in
    ``[-1, 1]`` with ``H, W`` multiples of :attr:`spatial_compression`; latents are
    ``[B, latent_channels, H / c, W / c]``.
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

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode ``[B, C, h, w]`` latents to ``[B, 3, h * c, w * c]`` images in (about) ``[-1, 1]``."""
        if self.post_quant_conv is not None:
            latents = self.post_quant_conv(latents)
        return _decode_with_final_upsample(self.decoder, latents, self.stride)

    def _decode(self, z: torch.Tensor, return_dict: bool = True):
        """Route diffusers' ``decode`` through the SC-VAE tail so ``vae.decode(z).sample`` is also correct."""
        from diffusers.models.autoencoders.vae import DecoderOutput

        if self.use_tiling:
            raise NotImplementedError("F16AutoencoderKL does not implement diffusers' tiled decode; decode whole")
        decoded = self.decode_latents(z)
        return DecoderOutput(sample=decoded) if return_dict else (decoded,)
