"""Parameter count, FLOPs and activation memory of a config at a given output size, without any weights.

The model is instantiated on PyTorch's ``meta`` device (shapes only, no memory, no arithmetic) and one inference
forward is traced:

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions; 2 FLOPs per
  multiply-add). On ``meta`` attention runs through the math path, so its two batched matrix products
  (``Q K^T`` and ``A V``: ``4 S^2 d`` per layer for ``S`` tokens and width ``d``) are counted as such.
- Activation memory: every tensor an operator creates is added to a live total and removed when Python frees
  it; the peak of that total is reported. Attention score matrices (``[..., S, S]``) are excluded because
  flash/memory-efficient attention, which any 4K run needs, never materialises them.

- Largest tensor: the most elements any single tensor of the decode has (attention scores excluded, as above);
  CUDA kernels index with 32 bits, so it must stay below 2^31 (the partitioned SC-VAE decode keeps it there).
- Training memory per GPU (``--training-crop``): frozen weights in bf16, trained parameters (LoRA) in float32
  with their gradients, AdamW's two moments and the EMA copy, plus the activation peak of one traced training
  step (forward + backward, gradient checkpointing as the config sets it, each tensor at its own element size).

    python -m reference_model.cost --config flux-dev-f16 --size 4096 4096
    python -m reference_model.cost --config flux-dev-f16 --training-crop 1024
"""

from __future__ import annotations

import argparse
import json
import sys
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass(frozen=True)
class CostReport:
    """Cost of one inference at ``height x width`` output pixels (bytes at ``bytes_per_element``)."""

    config: str
    height: int
    width: int
    image_tokens: int
    text_tokens: int
    transformer_parameters: int
    vae_parameters: int
    transformer_flops: float
    transformer_attention_flops: float
    vae_encode_flops: float
    vae_decode_flops: float
    transformer_peak_activation_bytes: float
    vae_decode_peak_activation_bytes: float
    bytes_per_element: int
    vae_decode_largest_elements: int = 0
    partitioned_decode: bool = False


class _LiveBytes(TorchDispatchMode):
    """Peak of the bytes held by tensors created inside the mode (views and ``[..., S, S]`` scores excluded)."""

    def __init__(self, bytes_per_element: int | None, square_side: int | tuple[int, ...] | None):
        super().__init__()
        self.bytes_per_element = bytes_per_element  # None: each tensor's own element size
        sides = square_side if isinstance(square_side, tuple) else (square_side,)
        self.square_sides = {side for side in sides if side}  # sequence lengths whose [..., S, S] scores are skipped
        self.live = 0
        self.peak = 0
        self.largest = 0  # most elements of one tensor
        self.largest_by_dtype: dict[torch.dtype, int] = {}

    def _release(self, size: int) -> None:
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func.is_view:
            return result
        outputs = result if isinstance(result, tuple | list) else (result,)
        for output in outputs:
            if not isinstance(output, torch.Tensor):
                continue
            shape = tuple(output.shape)
            if len(shape) >= 2 and shape[-1] == shape[-2] and shape[-1] in self.square_sides:
                continue  # attention scores: not materialised by flash attention
            self.largest = max(self.largest, output.numel())
            self.largest_by_dtype[output.dtype] = max(self.largest_by_dtype.get(output.dtype, 0), output.numel())
            size = output.numel() * (self.bytes_per_element or output.element_size())
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(output, self._release, size)
        return result


def _count(function, bytes_per_element: int, square_side: int | None) -> tuple[float, float, float, int]:
    """(total FLOPs, bmm FLOPs, peak activation bytes, largest tensor's elements) of ``function()`` on meta."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    tracker = _LiveBytes(bytes_per_element, square_side)
    with torch.no_grad(), counter, tracker:
        function()
    per_op = counter.get_flop_counts().get("Global", {})
    bmm = float(sum(value for op, value in per_op.items() if "bmm" in str(op)))
    return float(counter.get_total_flops()), bmm, float(tracker.peak), tracker.largest


def cost_report(config_name: str, height: int, width: int, bytes_per_element: int = 2) -> CostReport:
    """Instantiate ``config_name``'s model on ``meta`` and trace one inference at ``height x width``."""
    from diffusers import FluxTransformer2DModel

    from reference_model.configs import load_config_file
    from reference_model.model import image_token_ids
    from reference_model.vae import F16AutoencoderKL

    model = load_config_file(config_name)["model"]
    with torch.device("meta"):
        transformer = FluxTransformer2DModel(**model["transformer"]).eval()
        vae = F16AutoencoderKL(**model["vae"]).eval()
    compression = vae.spatial_compression
    if height % (2 * compression) or width % (2 * compression):
        from op4ksr_bench.errors import UsageError

        raise UsageError(f"{width}x{height} is not a multiple of {2 * compression} px (one token)")
    latent_h, latent_w = height // compression, width // compression
    rows, columns = latent_h // 2, latent_w // 2
    tokens = rows * columns
    text_tokens = int(model.get("prompt_length", 512))
    config = transformer.config

    def run_transformer():
        with torch.device("meta"):
            transformer(
                hidden_states=torch.empty(1, tokens, config.in_channels),
                encoder_hidden_states=torch.empty(1, text_tokens, config.joint_attention_dim),
                pooled_projections=torch.empty(1, config.pooled_projection_dim),
                timestep=torch.ones(1),
                guidance=torch.ones(1) if config.guidance_embeds else None,
                img_ids=image_token_ids(rows, columns, "meta"),
                txt_ids=torch.zeros(text_tokens, 3),
                return_dict=False,
            )

    def run_encode():
        with torch.device("meta"):
            vae.encode_mean(torch.empty(1, 3, height, width))

    partitioned = bool(model.get("partitioned_decode", False))

    def run_decode():
        with torch.device("meta"):
            vae.decode_latents(torch.empty(1, vae.config.latent_channels, latent_h, latent_w), partitioned)

    transformer_flops, attention_flops, transformer_peak, _ = _count(
        run_transformer, bytes_per_element, tokens + text_tokens
    )
    encode_flops, _, _, _ = _count(run_encode, bytes_per_element, latent_h * latent_w)
    decode_flops, _, decode_peak, decode_largest = _count(run_decode, bytes_per_element, latent_h * latent_w)
    return CostReport(
        config=config_name,
        height=height,
        width=width,
        image_tokens=tokens,
        text_tokens=text_tokens,
        transformer_parameters=sum(p.numel() for p in transformer.parameters()),
        vae_parameters=sum(p.numel() for p in vae.parameters()),
        transformer_flops=transformer_flops,
        transformer_attention_flops=attention_flops,
        vae_encode_flops=encode_flops,
        vae_decode_flops=decode_flops,
        transformer_peak_activation_bytes=transformer_peak,
        vae_decode_peak_activation_bytes=decode_peak,
        bytes_per_element=bytes_per_element,
        vae_decode_largest_elements=decode_largest,
        partitioned_decode=partitioned,
    )


@dataclass(frozen=True)
class TrainingMemory:
    """Per-GPU memory of one training step (bytes), batch 1 per GPU at ``crop x crop`` (every GPU holds it all)."""

    config: str
    crop: int
    frozen_parameters: int
    trained_parameters: int
    frozen_weight_bytes: float  # bf16
    trained_state_bytes: float  # float32 weights + gradients + AdamW moments + EMA = 20 bytes per parameter
    activation_peak_bytes: float  # traced forward + backward
    gradient_checkpointing: bool

    @property
    def total_bytes(self) -> float:
        return self.frozen_weight_bytes + self.trained_state_bytes + self.activation_peak_bytes


def training_memory(config_name: str, crop: int) -> TrainingMemory:
    """Trace one bf16 training step of ``config_name`` at ``crop`` px on the meta device (see the module docstring)."""
    from reference_model.configs import load_config_file
    from reference_model.model import OP4KSR, ModelConfig

    values = load_config_file(config_name)
    config = ModelConfig.from_dict(values["model"])
    model = OP4KSR.from_config(config, device="meta", dtype=torch.bfloat16)
    checkpointing = bool(values.get("gradient_checkpointing", False))
    if checkpointing:
        model.transformer.enable_gradient_checkpointing()
        model.vae.enable_gradient_checkpointing()
    trained_ids = {id(p) for p in model.trainable_parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trained_ids)
        if id(parameter) in trained_ids:
            parameter.data = parameter.data.float()
    model.train()
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tracker = _LiveBytes(None, None)
    with tracker:
        lr = torch.empty(1, 3, crop // config.scale, crop // config.scale, device="meta", dtype=torch.bfloat16)
        model(lr, (crop, crop)).float().mean().backward()
    return TrainingMemory(
        config=config_name,
        crop=crop,
        frozen_parameters=frozen,
        trained_parameters=trained,
        frozen_weight_bytes=2.0 * frozen,
        trained_state_bytes=20.0 * trained,
        activation_peak_bytes=float(tracker.peak),
        gradient_checkpointing=checkpointing,
    )


def format_training_memory(plan: TrainingMemory) -> str:
    gib = 1024**3
    return "\n".join(
        [
            f"{plan.config} training step at {plan.crop}x{plan.crop}, batch 1 per GPU, bf16, gradient checkpointing "
            f"{'on' if plan.gradient_checkpointing else 'off'}:",
            f"  frozen weights: {plan.frozen_parameters:,} parameters in bf16 = "
            f"{plan.frozen_weight_bytes / gib:.2f} GiB",
            f"  trained: {plan.trained_parameters:,} parameters x 20 bytes (fp32 weights, gradients, 2 AdamW "
            f"moments, EMA) = {plan.trained_state_bytes / gib:.2f} GiB",
            f"  activations (traced forward + backward peak): {plan.activation_peak_bytes / gib:.2f} GiB",
            f"  total per GPU: {plan.total_bytes / gib:.2f} GiB (plus the CUDA context and allocator slack)",
        ]
    )


def _flop(value: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value / 1e6:.3g} MFLOP"


def format_report(report: CostReport) -> str:
    """Human-readable summary."""
    gib = 1024**3
    linear = report.transformer_flops - report.transformer_attention_flops
    return "\n".join(
        [
            f"{report.config} at {report.width}x{report.height}: {report.image_tokens:,} image tokens "
            f"+ {report.text_tokens} text tokens",
            f"  transformer: {report.transformer_parameters:,} parameters, {_flop(report.transformer_flops)} per "
            f"forward (attention {_flop(report.transformer_attention_flops)}, linear/other {_flop(linear)}), "
            f"peak activations {report.transformer_peak_activation_bytes / gib:.2f} GiB",
            f"  VAE: {report.vae_parameters:,} parameters, encode {_flop(report.vae_encode_flops)}, decode "
            f"{_flop(report.vae_decode_flops)}, decode peak activations "
            f"{report.vae_decode_peak_activation_bytes / gib:.2f} GiB, largest decode tensor "
            f"{report.vae_decode_largest_elements:,} elements "
            f"({'partitioned' if report.partitioned_decode else 'plain'} last stage)",
            f"  (activations at {report.bytes_per_element} bytes per element)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Meta-device cost report of a reference-model config.")
    parser.add_argument("--config", default="flux-dev-f16")
    parser.add_argument("--size", type=int, nargs=2, default=(4096, 4096), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--bytes-per-element", type=int, default=2, help="2 for bf16, 4 for fp32")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--training-crop", type=int, help="report per-GPU training memory at this crop instead")
    args = parser.parse_args(argv)
    if args.training_crop:
        plan = training_memory(args.config, args.training_crop)
        print(
            json.dumps({**asdict(plan), "total_bytes": plan.total_bytes}) if args.json else format_training_memory(plan)
        )
        return 0
    report = cost_report(args.config, args.size[0], args.size[1], args.bytes_per_element)
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
