"""OP4KSR reference model: one Flux transformer call on F16-VAE latents, no tiles, every step visible.

``forward``: LR ``[B, 3, h, w]`` in ``[0, 1]`` -> bicubic resize to the output size ``H x W`` -> F16 VAE encode
(posterior mean) -> latent normalisation -> pack 2x2 latent cells into 64-d tokens -> ONE
``FluxTransformer2DModel`` call at the fixed timestep ``t*`` with the stored empty-prompt embeddings -> flow
prediction ``v`` -> ``z_hr = z_lr - t* * v`` -> unpack -> decode. ``H`` and ``W`` must be multiples of the pixels
per token (32 with the F16 VAE: 16 px per latent cell x 2 cells per token), so 4096x4096 (16,384 tokens),
3840x2160 (8,160 tokens) and every RealVary shape run in one pass.

A saved model is a folder::

    op4ksr.json                      the ModelConfig (this file's dataclass) + format version
    transformer/                     diffusers FluxTransformer2DModel (config.json + *.safetensors)
    vae/                             diffusers AutoencoderKL with the SC-VAE ``stride`` (config.json + safetensors)
    prompt_embeddings.safetensors    prompt_embeds [1, L, joint_attention_dim], pooled_prompt_embeds [1, P]
    transformer_lora/                optional: peft LoRA (adapter_config.json + adapter_model.safetensors)
    skip.safetensors                 only with ``bicubic_skip``: the skip gate ``gate [3]``

A folder with real weights (FLUX.1-dev ``transformer/`` + SC-VAE ``vae/`` + the empty-prompt embeddings made
once by ``python -m reference_model.prompt_embeddings``) has the same layout; without ``op4ksr.json`` it runs
with the ``flux-dev-f16`` model settings. A LoRA model trained on a real base stores only ``transformer_lora/``
(and ``vae/`` only when the VAE was trained): the base is reloaded from the config's ``transformer_path`` /
``vae_path``.

Precision: ``from_config`` / ``from_pretrained`` take ``dtype`` and ``device``; the default dtype is bfloat16 on
CUDA and float32 elsewhere. Real weights are read by diffusers straight into that dtype (``low_cpu_mem_usage``:
the modules are built on the meta device and the file's tensors assigned), so a bf16 model never exists in
float32. Only from-scratch configs (no ``transformer_path``) are initialised in float32 on the CPU first.

Empty prompt: a model on a real transformer needs the stored embeddings (``prompt_embeddings`` in the config,
or ``prompt_embeddings.safetensors`` in a saved folder) and refuses to start without them; only from-scratch
configs (no text encoder at all) use a fixed, seeded random "empty prompt", and ``op4ksr.json`` says which.

Bicubic skip (``bicubic_skip``, a departure from the paper for CPU-scale models): the upsampled image is the
benchmark's own ``bicubic`` (Pillow's Keys kernel, ``a = -0.5``, clamped; ``op4ksr_bench.methods.interpolation``)
and the output is ``bicubic + gate * (decode(z_hr) - decode(z_lr))`` with a per-channel ``gate`` initialised to
zero. The decoded *change* the transformer makes is added to the bicubic image, so the VAE's own reconstruction
error cancels (a small F16 VAE reconstructs 4K worse than bicubic does), and at ``gate = 0`` the model's output
is bit-identical to the ``bicubic`` method's (tested). The paper's model decodes ``z_hr`` directly.

Skip prefilter (``skip_prefilter: k``, only with ``bicubic_skip``): a learned ``k x k`` filter per channel applied
to the LR (replicate borders) before the skip's bicubic, initialised to the identity (a centred delta), so the
untrained model is still the ``bicubic`` method bit for bit (tested). The heavily degraded LR of the synthetic
suites carries noise and JPEG artefacts that the benchmark's sharpening bicubic kernel amplifies; the filter lets
the model learn the linear part of undoing that, and the transformer's decoded change is added on top. It is
linear and spatially uniform: its share of a model's gain is reported separately (``reference_model.evaluate
shares``; ``docs/reference_model/ablation.md``).

Frozen VAE (``train_vae: false``): the VAE's parameters are created with ``requires_grad=False`` and no
gradient reaches them (tested); the CPU-scale recipe pretrains the VAE as an HR autoencoder (the trainer's
``stage: vae``) and then trains the transformer on it, as the paper trains on a pretrained VAE.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from op4ksr_bench.errors import UsageError, WeightsMissingError
from op4ksr_bench.methods.interpolation import cubic_kernel, resample_axis
from reference_model.rope import apply_rfr

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PROMPT_FILE = "prompt_embeddings.safetensors"
CONFIG_FILE = "op4ksr.json"
SKIP_FILE = "skip.safetensors"
PILLOW_CUBIC = functools.partial(cubic_kernel, a=-0.5)
"""The ``bicubic`` method's default kernel (Keys, ``a = -0.5``), used by ``bicubic_skip`` models."""
DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines an OP4KSR model (saved as ``op4ksr.json`` beside the weights).

    Attributes:
        name: Config name (``nano``, ``flux-dev-f16``).
        transformer: ``FluxTransformer2DModel`` keyword arguments (used when no transformer folder is given).
        transformer_path: Folder with a diffusers transformer to start from (real weights; LoRA base), or None.
        vae: ``F16AutoencoderKL`` keyword arguments (used when no VAE folder is given).
        vae_path: Folder with a diffusers VAE to start from, or None.
        timestep: The fixed timestep ``t*`` in ``(0, 1]``; the LR latent is the noisy state at ``t*``.
        guidance: Guidance value fed to guidance-distilled transformers (FLUX.1-dev); ignored otherwise.
        rope_theta: Stock RoPE base (Flux: 10000).
        rfr_mode: RFR mode: ``none``, ``base``, ``ntk`` or ``pi`` (position interpolation); see
            ``reference_model/rope.py``.
        rfr_scale: RFR factor ``s``.
        prompt_length: Tokens in the stored empty-prompt embedding when it is generated (nano: seeded constant).
        lora_rank: LoRA rank on the transformer's attention projections (0: train all weights).
        lora_alpha: LoRA alpha (None: equal to the rank).
        lora_targets: Module-name suffixes that get LoRA.
        train_vae: Whether training updates the VAE (nano: yes, it is trained from scratch; real: no).
        scale: The super-resolution factor the model is trained for.
        prompt_embeddings: ``prompt_embeddings.safetensors`` (or the folder holding it) written by
            ``python -m reference_model.prompt_embeddings``; required with ``transformer_path``.
        partitioned_decode: Run the F16 VAE's last decoder stage in parts, as SC-VAE is trained (see
            ``reference_model/vae.py``); on for real SC-VAE weights, off for ``nano`` (trained without it).
        bicubic_skip: Output ``bicubic + gate * (decode(z_hr) - decode(z_lr))`` with a zero-initialised
            per-channel gate (see the module docstring; a departure from the paper). Off: the paper's
            ``decode(z_hr)`` on a ``torch`` bicubic upsampling (``nano``).
        skip_prefilter: Odd kernel size of the skip's learned per-channel LR filter (identity-initialised; see the
            module docstring); 0: none. Needs ``bicubic_skip``.
    """

    name: str = "nano"
    transformer: dict[str, Any] = field(default_factory=dict)
    transformer_path: str | None = None
    vae: dict[str, Any] = field(default_factory=dict)
    vae_path: str | None = None
    timestep: float = 0.5
    guidance: float = 1.0
    rope_theta: float = 10000.0
    rfr_mode: str = "none"
    rfr_scale: float = 1.0
    prompt_length: int = 8
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    train_vae: bool = True
    scale: int = 4
    prompt_embeddings: str | None = None
    partitioned_decode: bool = False
    bicubic_skip: bool = False
    skip_prefilter: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict (YAML/JSON), rejecting unknown keys with one line."""
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown model config key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(values)
        if "lora_targets" in values:
            values["lora_targets"] = tuple(values["lora_targets"])
        config = cls(**values)
        if not 0.0 < config.timestep <= 1.0:
            raise UsageError(f"model timestep must be in (0, 1], got {config.timestep}")
        size = config.skip_prefilter
        if size and (not config.bicubic_skip or size < 0 or size % 2 == 0):
            raise UsageError(f"model skip_prefilter must be 0 or an odd kernel size with bicubic_skip on, got {size}")
        return config

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lora_targets"] = list(self.lora_targets)
        return values


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, h, w]`` -> ``[B, (h/2)(w/2), 4C]``: each 2x2 latent patch becomes one token (Flux order)."""
    batch, channels, height, width = latents.shape
    latents = latents.view(batch, channels, height // 2, 2, width // 2, 2)
    latents = latents.permute(0, 2, 4, 1, 3, 5)
    return latents.reshape(batch, (height // 2) * (width // 2), channels * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_latents`: ``[B, (h/2)(w/2), 4C]`` -> ``[B, C, h, w]`` (``h, w`` latent cells)."""
    batch, _, token_channels = tokens.shape
    channels = token_channels // 4
    tokens = tokens.view(batch, height // 2, width // 2, channels, 2, 2)
    tokens = tokens.permute(0, 3, 1, 4, 2, 5)
    return tokens.reshape(batch, channels, height, width)


def benchmark_bicubic(lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``lr [B, 3, h, w]`` resized to ``size`` exactly as the benchmark's ``bicubic`` method does (Pillow's Keys
    kernel with ``a = -0.5``, Pillow's borders, float32, clamped to ``[0, 1]``); differentiable (the skip prefilter
    learns through it)."""
    image = lr.float().contiguous()
    image = resample_axis(image, 2, int(size[0]), PILLOW_CUBIC, 2.0)
    image = resample_axis(image.transpose(2, 3).contiguous(), 2, int(size[1]), PILLOW_CUBIC, 2.0)
    return image.clamp_(0.0, 1.0).transpose(2, 3)


def image_token_ids(rows: int, columns: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flux position ids ``[rows * columns, 3]``: (0, row, column) per token, row-major."""
    ids = torch.zeros(rows, columns, 3)
    ids[..., 1] = torch.arange(rows)[:, None]
    ids[..., 2] = torch.arange(columns)[None, :]
    return ids.reshape(rows * columns, 3).to(device)


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device | str | None) -> torch.dtype:
    """``dtype`` as a ``torch.dtype``; None: bfloat16 on CUDA, float32 elsewhere."""
    if dtype is None:
        return torch.bfloat16 if torch.device(device or "cpu").type == "cuda" else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
            raise UsageError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
        return resolved
    return dtype


PROMPT_COMMAND = "python -m reference_model.prompt_embeddings --flux FLUX_DEV_DIR --out DIR"


def load_prompt_embeddings(path: Path, transformer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds, pooled_prompt_embeds)`` from ``path`` (the file or its folder), checked against the
    transformer's widths; one-line :class:`WeightsMissingError` naming the file and the command that writes it."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if path.is_dir() or not path.suffix:
        path = path / PROMPT_FILE
    if not path.is_file():
        raise WeightsMissingError(f"{path} is missing: write the empty-prompt embeddings once with `{PROMPT_COMMAND}`")
    tensors = load_file(str(path))
    if set(tensors) != {"prompt_embeds", "pooled_prompt_embeds"}:
        raise WeightsMissingError(f"{path} must hold prompt_embeds and pooled_prompt_embeds; rewrite it with "
                                  f"`{PROMPT_COMMAND}`")  # fmt: skip
    joint, pooled = transformer.config.joint_attention_dim, transformer.config.pooled_projection_dim
    widths = (tensors["prompt_embeds"].shape[-1], tensors["pooled_prompt_embeds"].shape[-1])
    if widths != (joint, pooled):
        raise UsageError(
            f"{path}: embeddings of widths {widths[0]}/{widths[1]} do not fit this transformer ({joint}/{pooled}); "
            "write them from the same FLUX.1 folder"
        )
    return tensors["prompt_embeds"], tensors["pooled_prompt_embeds"]


class OP4KSR(nn.Module):
    """The reference model: F16 VAE + Flux transformer + stored empty-prompt embeddings.

    Args:
        config: The model config.
        transformer: A ``FluxTransformer2DModel``.
        vae: An :class:`~reference_model.vae.F16AutoencoderKL`.
        prompt_embeds: ``[1, L, joint_attention_dim]`` empty-prompt sequence embedding.
        pooled_prompt_embeds: ``[1, pooled_projection_dim]`` empty-prompt pooled embedding.
    """

    def __init__(
        self,
        config: ModelConfig,
        transformer: nn.Module,
        vae: nn.Module,
        prompt_embeds: torch.Tensor,
        pooled_prompt_embeds: torch.Tensor,
    ):
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.vae = vae
        self.register_buffer("prompt_embeds", prompt_embeds.detach().clone())
        self.register_buffer("pooled_prompt_embeds", pooled_prompt_embeds.detach().clone())
        self.prompt_source = "stored"  # set by from_config: "stored" or "seeded-random"
        # the skip gate (bicubic_skip only): zero at initialisation, so the untrained model is exactly bicubic
        self.skip_gate = nn.Parameter(torch.zeros(3)) if config.bicubic_skip else None
        # the skip's LR prefilter (skip_prefilter only): a centred delta per channel, so it starts as the identity
        self.skip_prefilter = None
        if config.skip_prefilter:
            size = int(config.skip_prefilter)
            delta = torch.zeros(3, 1, size, size)
            delta[:, :, size // 2, size // 2] = 1.0
            self.skip_prefilter = nn.Parameter(delta)
        if not config.train_vae:
            vae.requires_grad_(False)
        vae.partitioned_decode = bool(config.partitioned_decode)
        self.rope_thetas = apply_rfr(transformer, config.rfr_mode, config.rfr_scale, config.rope_theta)
        token_channels = transformer.config.in_channels
        if token_channels != 4 * vae.config.latent_channels:
            raise UsageError(
                f"transformer in_channels {token_channels} != 4 x VAE latent_channels {vae.config.latent_channels}"
            )

    # ---- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        seed: int = 0,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
    ) -> OP4KSR:
        """Build from a config: random init (seeded) for dict configs, local folders for ``*_path`` entries.

        Args:
            config: The model config.
            seed: Seeds the from-scratch initialisation and the from-scratch "empty prompt".
            dtype: Weights dtype (default: bfloat16 on CUDA, float32 elsewhere).
            device: Where the weights go (``meta``: shapes only, nothing allocated).

        Raises:
            WeightsMissingError: a real transformer without its stored empty-prompt embeddings, or a missing file.
            UsageError: a VAE folder whose compression is not the config's.
        """
        from diffusers import FluxTransformer2DModel

        from reference_model.vae import F16AutoencoderKL

        device = torch.device(device or "cpu")
        dtype = resolve_dtype(dtype, device)
        if config.transformer_path and not config.prompt_embeddings:
            raise WeightsMissingError(
                f"model.prompt_embeddings is not set: a model on the real transformer {config.transformer_path} needs "
                f"the stored empty prompt; write it once with `{PROMPT_COMMAND}` and set "
                "model.prompt_embeddings=DIR/prompt_embeddings.safetensors"
            )
        # From scratch: float32 init on the CPU (seeded, as always), then cast; on "meta" the modules are built
        # directly in `dtype` (shapes only: nothing is allocated, no float32 tensor exists even on paper).
        scratch_device = device if device.type == "meta" else torch.device("cpu")
        default_dtype = torch.get_default_dtype()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        if device.type == "meta":
            torch.set_default_dtype(dtype)
        try:
            if config.transformer_path:
                transformer = _load_diffusers(FluxTransformer2DModel, Path(config.transformer_path), dtype=dtype,
                                              device=device)  # fmt: skip
            else:
                with scratch_device:
                    transformer = FluxTransformer2DModel(**config.transformer)
            if config.vae_path:
                vae = _load_vae(Path(config.vae_path), int(config.vae.get("stride", 2)), dtype=dtype, device=device)
            else:
                with scratch_device:
                    vae = F16AutoencoderKL(**config.vae)
            if config.prompt_embeddings:
                prompt_embeds, pooled_prompt_embeds = load_prompt_embeddings(
                    Path(config.prompt_embeddings), transformer
                )
                source = "stored"
            else:
                # Without a text encoder the "empty prompt" of a from-scratch model is a fixed, seeded constant.
                generator = torch.Generator().manual_seed(seed + 1)
                joint_dim = transformer.config.joint_attention_dim
                pooled_dim = transformer.config.pooled_projection_dim
                prompt_embeds = torch.randn(1, config.prompt_length, joint_dim, generator=generator)
                pooled_prompt_embeds = torch.randn(1, pooled_dim, generator=generator)
                source = "seeded-random"
        finally:
            torch.random.set_rng_state(generator_state)
            torch.set_default_dtype(default_dtype)
        model = cls(config, transformer, vae, prompt_embeds, pooled_prompt_embeds)
        model.prompt_source = source
        model.to(device=device, dtype=dtype)  # no-op for weights already loaded in place
        if config.lora_rank > 0:
            model.add_lora(config.lora_rank, config.lora_alpha, config.lora_targets)
        return model

    def add_lora(self, rank: int, alpha: float | None = None, targets: tuple[str, ...] = DEFAULT_LORA_TARGETS) -> None:
        """Attach a peft LoRA adapter to the transformer and freeze its base weights."""
        from peft import LoraConfig

        lora_config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=list(targets), init_lora_weights=True)
        self.transformer.add_adapter(lora_config)

    @property
    def has_lora(self) -> bool:
        return bool(getattr(self.transformer, "_hf_peft_config_loaded", False))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the trainer updates: LoRA weights (if any) or the whole transformer, plus the VAE if trained."""
        if self.has_lora:
            parameters = [p for n, p in self.transformer.named_parameters() if "lora_" in n]
        else:
            parameters = list(self.transformer.parameters())
        if self.config.train_vae:
            parameters += list(self.vae.parameters())
        if self.skip_gate is not None:
            parameters.append(self.skip_gate)
        if self.skip_prefilter is not None:
            parameters.append(self.skip_prefilter)
        return parameters

    def load_skip_gate(self, path: Path) -> None:
        """Read the skip gate (and prefilter) from ``skip.safetensors`` (one line when missing or malformed)."""
        from safetensors.torch import load_file

        if not path.is_file():
            raise WeightsMissingError(f"{path} is missing: a bicubic_skip model folder holds its gate there")
        tensors = load_file(str(path))
        expected = {"gate": (3,)}
        if self.skip_prefilter is not None:
            expected["prefilter"] = tuple(self.skip_prefilter.shape)
        shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
        if shapes != expected:
            wanted = ", ".join(f"'{name}' of shape {list(shape)}" for name, shape in expected.items())
            raise WeightsMissingError(f"{path} must hold exactly {wanted} (it holds {shapes})")
        with torch.no_grad():
            self.skip_gate.copy_(tensors["gate"])
            if self.skip_prefilter is not None:
                self.skip_prefilter.copy_(tensors["prefilter"])

    # ---- geometry ----------------------------------------------------------------------------------------------

    @property
    def pixels_per_token(self) -> int:
        """Output pixels per token along each axis: VAE compression x 2 (the 2x2 packing)."""
        return self.vae.spatial_compression * 2

    def check_output_size(self, height: int, width: int) -> None:
        step = self.pixels_per_token
        if height % step or width % step or height <= 0 or width <= 0:
            raise UsageError(
                f"output size {width}x{height} is not a multiple of {step} px (one token); "
                f"pick an input whose {self.config.scale}x size is a multiple of {step}"
            )

    # ---- the forward pass --------------------------------------------------------------------------------------

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> normalised latents ``[B, C, H / c, W / c]``."""
        latents = self.vae.encode_mean(image * 2.0 - 1.0)
        shift = self.vae.config.shift_factor or 0.0
        return (latents - shift) * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> ``[B, 3, H, W]`` in (about) ``[0, 1]`` (not clamped)."""
        shift = self.vae.config.shift_factor or 0.0
        image = self.vae.decode_latents(latents / self.vae.config.scaling_factor + shift)
        return (image + 1.0) * 0.5

    def denoise(self, latents: torch.Tensor) -> torch.Tensor:
        """One transformer call at ``t*``: ``z_hr = z_lr - t* * v`` on ``[B, C, h, w]`` latents."""
        batch, _, height, width = latents.shape
        tokens = pack_latents(latents)
        transformer_dtype = self.transformer.x_embedder.weight.dtype
        timestep = torch.full((batch,), self.config.timestep, device=latents.device, dtype=transformer_dtype)
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full((batch,), self.config.guidance, device=latents.device, dtype=transformer_dtype)
        velocity = self.transformer(
            hidden_states=tokens.to(transformer_dtype),
            encoder_hidden_states=self.prompt_embeds.expand(batch, -1, -1).to(transformer_dtype),
            pooled_projections=self.pooled_prompt_embeds.expand(batch, -1).to(transformer_dtype),
            timestep=timestep,
            img_ids=image_token_ids(height // 2, width // 2, latents.device),
            txt_ids=torch.zeros(self.prompt_embeds.shape[1], 3, device=latents.device),
            guidance=guidance,
            return_dict=False,
        )[0]
        hr_tokens = tokens - self.config.timestep * velocity.to(tokens.dtype)
        return unpack_latents(hr_tokens, height, width)

    def forward(self, lr: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Super-resolve ``lr [B, 3, h, w]`` in ``[0, 1]`` to ``[B, 3, H, W]`` (default ``scale x``), not clamped."""
        if output_size is None:
            output_size = (lr.shape[-2] * self.config.scale, lr.shape[-1] * self.config.scale)
        height, width = output_size
        self.check_output_size(height, width)
        if self.skip_gate is not None:
            upsampled = benchmark_bicubic(self.prefilter(lr), (height, width))
        else:
            upsampled = F.interpolate(lr, size=(height, width), mode="bicubic", align_corners=False)
        # channels-last activations make the narrow convolutions of small VAEs 2-3x faster on CPU (oneDNN)
        channels_last = upsampled.contiguous(memory_format=torch.channels_last)
        vae_dtype = self.vae.encoder.conv_in.weight.dtype
        lr_latents = self.encode(channels_last.to(vae_dtype))
        hr_latents = self.denoise(lr_latents)
        hr_latents = hr_latents.to(vae_dtype).contiguous(memory_format=torch.channels_last)
        if self.skip_gate is None:
            return self.decode(hr_latents).float().contiguous()
        change = (
            self.decode(hr_latents).float()
            - self.decode(lr_latents.contiguous(memory_format=torch.channels_last)).float()
        )
        gate = self.skip_gate.float().view(1, 3, 1, 1)
        return (upsampled.float() + gate * change).contiguous()

    def prefilter(self, lr: torch.Tensor) -> torch.Tensor:
        """The skip's learned LR filter (``skip_prefilter``; replicate borders), or ``lr`` itself when there is none."""
        if self.skip_prefilter is None:
            return lr
        pad = self.skip_prefilter.shape[-1] // 2
        padded = F.pad(lr.float(), (pad, pad, pad, pad), mode="replicate")
        return F.conv2d(padded, self.skip_prefilter.float(), groups=3)

    def reconstruct(self, image: torch.Tensor) -> torch.Tensor:
        """The VAE alone: ``decode(encode(image))`` for ``[B, 3, H, W]`` in ``[0, 1]`` (not clamped)."""
        channels_last = image.contiguous(memory_format=torch.channels_last)
        vae_dtype = self.vae.encoder.conv_in.weight.dtype
        return self.decode(self.encode(channels_last.to(vae_dtype))).float().contiguous()

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Inference: :meth:`forward` without gradients, clamped to ``[0, 1]``."""
        return self.forward(lr, output_size).clamp_(0.0, 1.0)

    # ---- saving and loading ------------------------------------------------------------------------------------

    def save_pretrained(
        self, folder: Path, save_base_transformer: bool | None = None, save_vae: bool | None = None
    ) -> None:
        """Write the folder layout in the module docstring (safetensors + JSON configs).

        Args:
            folder: Destination (created).
            save_base_transformer: Also write the full transformer when a LoRA is attached (default: only when the
                config names no ``transformer_path`` to reload the base from).
            save_vae: Write ``vae/`` (default: unless the VAE is frozen and reloaded from ``vae_path``; True makes a
                self-contained folder, which :meth:`from_pretrained` prefers over ``vae_path``).
        """
        from safetensors.torch import save_file

        from op4ksr_bench.atomic import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if save_base_transformer is None:
            save_base_transformer = not (self.has_lora and self.config.transformer_path)
        if self.has_lora:
            _save_lora(self.transformer, folder / "transformer_lora")
        if save_base_transformer:
            _save_diffusers(self.transformer, folder / "transformer", without_lora=self.has_lora)
        if save_vae is None:  # by default a frozen VAE is reloaded from vae_path
            save_vae = self.config.train_vae or not self.config.vae_path
        if save_vae:
            _save_diffusers(self.vae, folder / "vae", without_lora=False)
        tensors = {
            "prompt_embeds": self.prompt_embeds.detach().cpu().contiguous(),
            "pooled_prompt_embeds": self.pooled_prompt_embeds.detach().cpu().contiguous(),
        }
        save_file(tensors, str(folder / PROMPT_FILE))
        if self.skip_gate is not None:
            skip = {"gate": self.skip_gate.detach().float().cpu().contiguous()}
            if self.skip_prefilter is not None:
                skip["prefilter"] = self.skip_prefilter.detach().float().cpu().contiguous()
            save_file(skip, str(folder / SKIP_FILE))
        payload = {
            "format": "op4ksr-reference",
            "format_version": FORMAT_VERSION,
            "model": self.config.to_dict(),
            "prompt_embeddings_source": self.prompt_source,
        }
        atomic_write_text(folder / CONFIG_FILE, json.dumps(payload, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_pretrained(
        cls,
        folder: Path,
        overrides: dict[str, Any] | None = None,
        default_config: str = "flux-dev-f16",
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
    ) -> OP4KSR:
        """Load a saved model or a real-weights folder (see the module docstring).

        Args:
            folder: The folder.
            overrides: Model-config fields to change at load time (e.g. ``rfr_scale``, ``timestep``).
            default_config: Config whose ``model`` section applies when the folder has no ``op4ksr.json``.
            dtype: Weights dtype (default: bfloat16 on CUDA, float32 elsewhere); read straight into it.
            device: Where the weights go.

        Raises:
            WeightsMissingError: A required file is missing (one line naming it and where it goes).
        """
        from diffusers import FluxTransformer2DModel

        device = torch.device(device or "cpu")
        dtype = resolve_dtype(dtype, device)
        folder = Path(folder)
        if not folder.is_dir():
            raise WeightsMissingError(f"OP4KSR weights folder {folder} does not exist")
        payload: dict[str, Any] = {}
        if (folder / CONFIG_FILE).is_file():
            payload = json.loads((folder / CONFIG_FILE).read_text())
            values = payload["model"]
        else:
            from reference_model.configs import load_config_file

            values = dict(load_config_file(default_config).get("model", {}))
            values.pop("transformer_path", None)
            values.pop("vae_path", None)
        values.update(overrides or {})
        config = ModelConfig.from_dict(values)
        options = {"dtype": dtype, "device": device}
        if (folder / "transformer" / "config.json").is_file():
            transformer = _load_diffusers(FluxTransformer2DModel, folder / "transformer", **options)
        elif config.transformer_path:
            transformer = _load_diffusers(FluxTransformer2DModel, Path(config.transformer_path), **options)
        else:
            raise WeightsMissingError(
                f"{folder / 'transformer' / 'config.json'} is missing: put the FLUX.1 transformer folder "
                "(config.json + *.safetensors) there"
            )
        vae_folder = folder / "vae"
        if not vae_folder.is_dir() and config.vae_path:
            vae_folder = Path(config.vae_path)
        vae = _load_vae(vae_folder, int(config.vae.get("stride", 2)), **options)
        prompt_embeds, pooled_prompt_embeds = load_prompt_embeddings(folder / PROMPT_FILE, transformer)
        model = cls(config, transformer, vae, prompt_embeds, pooled_prompt_embeds)
        if config.bicubic_skip:
            model.load_skip_gate(folder / SKIP_FILE)
        model.to(device=device, dtype=dtype)  # the prompt buffers; the weights are already there
        # folders saved before the source was recorded: a from-scratch model could only have the seeded-random one
        scratch = not (config.transformer_path or config.prompt_embeddings) and (folder / CONFIG_FILE).is_file()
        model.prompt_source = payload.get("prompt_embeddings_source", "seeded-random" if scratch else "stored")
        if (folder / "transformer_lora").is_dir():
            _load_lora(model.transformer, folder / "transformer_lora")
        model.eval()
        return model


def _load_diffusers(
    model_class: type,
    folder: Path,
    what: str = "the diffusers folder",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """``model_class.from_pretrained(folder)`` in ``dtype`` on ``device``, with one-line errors for missing files.

    diffusers builds the module on the meta device and assigns the file's tensors (``low_cpu_mem_usage``), cast
    tensor by tensor to ``dtype``: peak host memory is one shard, and a bf16 file never becomes float32.
    """
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WeightsMissingError(f"{config_path} is missing: put {what} (config.json + *.safetensors) there")
    if not any(folder.glob("*.safetensors")):
        raise WeightsMissingError(f"no *.safetensors in {folder}: put {what}'s weight files there")
    device = torch.device(device)
    extra: dict[str, Any] = {} if device.type == "cpu" else {"device_map": {"": device}}
    module = model_class.from_pretrained(
        str(folder), torch_dtype=dtype, local_files_only=True, low_cpu_mem_usage=True, **extra
    )
    if device.type == "cpu":
        # Tensors read from safetensors can sit at unaligned addresses, which sends CPU matrix products down
        # another SIMD path with another summation order; aligned copies make a reload bit-identical.
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                if tensor.data_ptr() % 64:
                    tensor.data = tensor.data.clone()
    return module


def _load_vae(folder: Path, expected_stride: int, dtype: torch.dtype, device: torch.device | str) -> nn.Module:
    """The F16 VAE folder, refused in one line unless its ``config.json`` declares the expected ``stride``.

    The stride is the only field telling an F16 (SC-VAE, ``"stride": 2``) folder from the stock F8 layout (FLUX.1's
    own ``vae/``, which has no such field): loading F8 weights into the F16 layout would run without error and
    give garbage, so an undeclared or different compression is an error, not a default.
    """
    from reference_model.vae import F16AutoencoderKL

    config_path = folder / "config.json"
    if config_path.is_file():
        declared = json.loads(config_path.read_text()).get("stride")
        if declared is None:
            raise UsageError(
                f'{config_path} declares no compression ("stride"); an F16 SC-VAE folder has "stride": 2 '
                "(FLUX.1's own vae/ is F8): point vae_path at the SC-VAE folder or add the field if it is one"
            )
        if int(declared) != expected_stride:
            factor = {1: "F8", 2: "F16"}.get(int(declared), f"stride {declared}")
            wanted = {1: "F8", 2: "F16"}.get(expected_stride, f"stride {expected_stride}")
            raise UsageError(f'{folder} is an {factor} VAE ("stride": {declared}) where the model expects {wanted}')
    return _load_diffusers(F16AutoencoderKL, folder, what="the F16 (SC-VAE) folder", dtype=dtype, device=device)


def _save_diffusers(module: nn.Module, folder: Path, without_lora: bool) -> None:
    """diffusers ``save_pretrained`` (safetensors); with a LoRA attached, writes the base weights only."""
    if not without_lora:
        module.save_pretrained(str(folder), safe_serialization=True)
        return
    state = {k.replace(".base_layer", ""): v for k, v in module.state_dict().items() if "lora_" not in k}
    module.save_pretrained(str(folder), safe_serialization=True, state_dict=state)


def _save_lora(transformer: nn.Module, folder: Path) -> None:
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from op4ksr_bench.atomic import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    peft_config = transformer.peft_config["default"]
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()}
    save_file(state, str(folder / "adapter_model.safetensors"))
    config_dict = peft_config.to_dict()
    config_dict = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config_dict.items()}
    atomic_write_text(folder / "adapter_config.json", json.dumps(config_dict, indent=2, sort_keys=True, default=str))


def _load_lora(transformer: nn.Module, folder: Path) -> None:
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():
            raise WeightsMissingError(f"{folder / name} is missing: a LoRA folder needs adapter_config.json + weights")
    values = json.loads((folder / "adapter_config.json").read_text())
    known = set(LoraConfig.__dataclass_fields__)
    lora_config = LoraConfig(**{k: v for k, v in values.items() if k in known and k not in ("peft_type", "task_type")})
    transformer.add_adapter(lora_config)
    result = set_peft_model_state_dict(transformer, load_file(str(folder / "adapter_model.safetensors")))
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise WeightsMissingError(f"{folder}: LoRA weights do not match the transformer ({len(unexpected)} keys)")
