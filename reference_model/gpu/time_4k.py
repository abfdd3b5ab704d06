"""Time OP4KSR at 4096x4096 on one GPU: full-size random-initialised Flux transformer + F16 VAE, bf16.

Two ways to do the same work:

- ``patch_free``: encode the 4096x4096 (upsampled) input with the F16 VAE, ONE transformer forward over
  128 x 128 = 16,384 image tokens (+ 512 text tokens), decode 4096x4096. This is what OP4KSR does.
- ``tiled``: the same pipeline on four 2176x2176 tiles (68 x 68 tokens each) at stride 1920 (256 px overlap),
  blended with linear ramps in the overlaps; what patch-based methods do.

Weights are random (normal, std 0.02; timing does not depend on the values) so no download is needed. Reports
seconds per image (median of ``--repeats`` after one warm-up) and peak allocated GPU memory for each mode, and
writes them to ``--out`` (JSON). The paper reports 5.75 s for 4096x4096 on one NVIDIA H20.

    python reference_model/gpu/time_4k.py --out reference_model/gpu/results.json

Written for torch 2.11+ and diffusers 0.42 (only long-standing APIs). It was NOT run in the session that
wrote it (no GPU there); see reference_model/gpu/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from reference_model.configs import load_config_file


def build(config_name: str, device: torch.device, dtype: torch.dtype):
    """Full-size transformer and VAE from the config, materialised on ``device`` with random weights."""
    from diffusers import FluxTransformer2DModel

    from reference_model.vae import F16AutoencoderKL

    model = load_config_file(config_name)["model"]
    with torch.device("meta"):
        transformer = FluxTransformer2DModel(**model["transformer"])
        vae = F16AutoencoderKL(**model["vae"])
    modules = []
    for module in (transformer, vae):
        module = module.to_empty(device=device).to(dtype)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            for name, parameter in module.named_parameters():
                if name.endswith("bias"):
                    parameter.zero_()
                elif "norm" in name and parameter.ndim == 1:
                    parameter.fill_(1.0)
                else:
                    parameter.normal_(0.0, 0.02, generator=generator)
        modules.append(module.eval().requires_grad_(False))
    return modules[0], modules[1], model


def pipeline(transformer, vae, model: dict, image: torch.Tensor) -> torch.Tensor:
    """encode -> pack -> one transformer call -> unpack -> decode, as reference_model.model.OP4KSR does."""
    from reference_model.model import image_token_ids, pack_latents, unpack_latents

    device, dtype = image.device, image.dtype
    latents = vae.encode_mean(image * 2 - 1)
    latents = (latents - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor
    _, _, height, width = latents.shape
    tokens = pack_latents(latents)
    text_tokens = int(model.get("prompt_length", 512))
    config = transformer.config
    timestep = torch.full((1,), float(model.get("timestep", 0.5)), device=device, dtype=dtype)
    velocity = transformer(
        hidden_states=tokens,
        encoder_hidden_states=torch.zeros(1, text_tokens, config.joint_attention_dim, device=device, dtype=dtype),
        pooled_projections=torch.zeros(1, config.pooled_projection_dim, device=device, dtype=dtype),
        timestep=timestep,
        guidance=torch.ones(1, device=device, dtype=dtype) if config.guidance_embeds else None,
        img_ids=image_token_ids(height // 2, width // 2, device),
        txt_ids=torch.zeros(text_tokens, 3, device=device),
        return_dict=False,
    )[0]
    latents = unpack_latents(tokens - timestep * velocity, height, width)
    latents = latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    return (vae.decode_latents(latents) + 1) * 0.5


def ramp(length: int, overlap: int, at_start: bool, at_end: bool, device, dtype) -> torch.Tensor:
    """1-D blending weight: linear ramps over ``overlap`` px on the sides that meet another tile."""
    weight = torch.ones(length, device=device, dtype=torch.float32)
    rise = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
    if not at_start:
        weight[:overlap] = rise
    if not at_end:
        weight[length - overlap :] = rise.flip(0)
    return weight.to(dtype)


def tiled(transformer, vae, model: dict, image: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """The same pipeline per tile, blended; tiles of ``tile`` px at stride ``tile - overlap``."""
    _, _, height, width = image.shape
    stride = tile - overlap
    starts_y = sorted({min(y, height - tile) for y in range(0, height - overlap, stride)})
    starts_x = sorted({min(x, width - tile) for x in range(0, width - overlap, stride)})
    output = torch.zeros_like(image, dtype=torch.float32)
    total = torch.zeros(1, 1, height, width, device=image.device, dtype=torch.float32)
    for top in starts_y:
        for left in starts_x:
            piece = pipeline(transformer, vae, model, image[:, :, top : top + tile, left : left + tile]).float()
            weight_y = ramp(tile, overlap, top == 0, top + tile == height, image.device, torch.float32)
            weight_x = ramp(tile, overlap, left == 0, left + tile == width, image.device, torch.float32)
            weight = weight_y[:, None] * weight_x[None, :]
            output[:, :, top : top + tile, left : left + tile] += piece * weight
            total[:, :, top : top + tile, left : left + tile] += weight
    return output / total


def measure(function, repeats: int, device: torch.device) -> dict[str, float | list[float] | None]:
    """Median seconds of ``repeats`` calls after one warm-up, and peak GPU memory (None on CPU)."""
    cuda = device.type == "cuda"

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize()

    synchronize()
    function()  # warm-up (kernels, allocator)
    synchronize()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return {
        "seconds_median": statistics.median(seconds),
        "seconds_all": seconds,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 1024**3 if cuda else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 1024**3 if cuda else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="flux-dev-f16")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=2176, help="tile side (px), a multiple of 32")
    parser.add_argument("--overlap", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (a dry run at small size)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; this script times the GPU path (use --device cpu for a dry run)", file=sys.stderr)
        return 1
    if args.size % 32 or args.tile % 32 or args.tile > args.size or not 0 < args.overlap < args.tile:
        print("error: size and tile must be multiples of 32, tile <= size, 0 < overlap < tile", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    transformer, vae, model = build(args.config, device, dtype)
    weights_gib = torch.cuda.memory_allocated() / 1024**3 if device.type == "cuda" else None
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    results = {
        "config": args.config,
        "size": args.size,
        "tile": args.tile,
        "overlap": args.overlap,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "weights_gib": weights_gib,
        "paper_reference": "5.75 s per 4096x4096 image on one NVIDIA H20 (OP4KSR abstract)",
    }
    with torch.inference_mode():
        results["patch_free"] = measure(lambda: pipeline(transformer, vae, model, image), args.repeats, device)
        print(f"patch-free: {json.dumps(results['patch_free'])}", flush=True)
        results["tiled"] = measure(
            lambda: tiled(transformer, vae, model, image, args.tile, args.overlap), args.repeats, device
        )
        print(f"tiled:      {json.dumps(results['tiled'])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
