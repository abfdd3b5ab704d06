"""Time OP4KSR at 4096x4096 on one GPU, exactly as ``op4ksr-bench run --method op4ksr`` runs it.

What is timed: the benchmark's own :class:`~op4ksr_bench.methods.op4ksr.Op4ksrMethod` ``upscale`` (bicubic resize,
channels-last F16 VAE encode, ONE transformer call over 16,384 image + 512 text tokens, the partitioned SC-VAE
decode, float32 output) around the full-size ``flux-dev-f16`` model (FLUX.1-dev transformer, 11.9 B parameters +
the F16 VAE), in bf16. The model is built on the meta device directly in bf16, materialised on the GPU with
``to_empty`` and filled with seeded random weights there (timing does not depend on the values; no download, and no
float32 copy ever exists). Two ways of doing the same image:

- ``patch_free``: one pass over the whole image (what OP4KSR does);
- ``tiled``: the benchmark's :class:`~op4ksr_bench.methods.tiling.TiledMethod` around the same method, four tiles
  of 2176 px (2048 px plus the 256 px overlap shared with the neighbour), linear blend.

For each: one untimed warm-up (kernel selection, allocator), then ``--repeats`` timed runs, each bracketed by
``torch.cuda.synchronize()``; the median seconds, every run's seconds, and the peak allocated/reserved memory.
Alongside: the FLOPs of that work from ``reference_model/cost.py`` (transformer + VAE encode + decode, meta-device
trace), the achieved TFLOP/s, and an H20 estimate = measured seconds x (this GPU's dense bf16 peak / the H20's),
with both peaks printed (``--peak-tflops`` for a GPU not in :data:`DENSE_BF16_TFLOPS`). The paper reports 5.75 s
for 4096x4096 on one H20. The estimate assumes the same fraction of peak on both GPUs; it is not a measurement.

    python reference_model/gpu/time_4k.py --out reference_model/gpu/results.json
    python reference_model/gpu/time_4k.py --config nano --size 128 --tile 96 --overlap 32 --device cpu   # dry run

Uses only APIs present in torch 2.11 to 2.14 (``torch.device`` contexts, ``to_empty``, ``torch.cuda`` memory
statistics).
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

PAPER_SECONDS_H20 = 5.75
DENSE_BF16_TFLOPS = (  # (substring of torch.cuda.get_device_name(), dense bf16 TFLOP/s without sparsity, source)
    ("GH200", 989.0, "NVIDIA GH200 datasheet"),
    ("H200", 989.0, "NVIDIA H200 datasheet (SXM)"),
    ("H20", 148.0, "NVIDIA H20 specification as published by OEMs (148 dense FP16/BF16)"),
    ("H100 PCIe", 756.0, "NVIDIA H100 datasheet (PCIe)"),
    ("H100", 989.0, "NVIDIA H100 datasheet (SXM)"),
    ("H800", 989.0, "NVIDIA H800 (SXM, H100 compute)"),
    ("A100", 312.0, "NVIDIA A100 datasheet"),
    ("A800", 312.0, "NVIDIA A800 (A100 compute)"),
    ("L40S", 362.0, "NVIDIA L40S datasheet"),
    ("RTX 4090", 165.2, "NVIDIA Ada whitepaper (FP32 accumulate)"),
)
H20_DENSE_BF16_TFLOPS = 148.0


def dense_bf16_peak(name: str) -> tuple[float, str] | None:
    """``(TFLOP/s, source)`` for a device name, first matching substring (order matters: H200 before H20)."""
    for key, value, source in DENSE_BF16_TFLOPS:
        if key in name:
            return value, source
    return None


def build_method(config_name: str, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """The benchmark's op4ksr method around the full model of ``config_name``, random weights, built in ``dtype``."""
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod
    from reference_model.configs import load_config_file
    from reference_model.model import OP4KSR, ModelConfig

    values = dict(load_config_file(config_name)["model"], lora_rank=0)  # inference: the base network only
    config = ModelConfig.from_dict(values)
    model = OP4KSR.from_config(config, device="meta", dtype=dtype).to_empty(device=device)
    torch.manual_seed(seed)
    initialised = set()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "reset_parameters") and not list(module.children()):
                module.reset_parameters()  # PyTorch's own init, in place, in dtype, on the device
                initialised.update(id(p) for p in module.parameters(recurse=False))
        for name, parameter in model.named_parameters():
            if id(parameter) in initialised:
                continue
            if name.endswith("bias"):
                parameter.zero_()
            elif parameter.ndim == 1:  # norm scales (RMSNorm of q/k, AdaLayerNorm weights)
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02)
        for buffer in model.buffers():  # the empty-prompt embeddings
            buffer.normal_(0.0, 1.0)
    dtype_name = str(dtype).removeprefix("torch.")
    return Op4ksrMethod.from_model(model, device=str(device), dtype=dtype_name, label=f"random {config_name}")


def measure(function, repeats: int, device: torch.device) -> dict[str, float | list[float] | None]:
    """Median seconds of ``repeats`` synchronised calls after one warm-up, and peak GPU memory (None on CPU)."""
    cuda = device.type == "cuda"

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    synchronize()
    function()  # warm-up, not timed
    synchronize()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return {
        "seconds_median": statistics.median(seconds),
        "seconds_all": seconds,
        "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / 1024**3 if cuda else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / 1024**3 if cuda else None,
    }


def work_flops(config_name: str, size: int, tile: int | None = None, tiles: int = 1) -> dict[str, float]:
    """Transformer, VAE encode and decode FLOPs (cost.py) of one ``size`` image, or of ``tiles`` ``tile`` tiles."""
    from reference_model.cost import cost_report

    side = tile or size
    report = cost_report(config_name, side, side)
    parts = {
        "transformer": report.transformer_flops * tiles,
        "vae_encode": report.vae_encode_flops * tiles,
        "vae_decode": report.vae_decode_flops * tiles,
    }
    return {**parts, "total": sum(parts.values())}


def summarise(timing: dict, flops: dict[str, float], peak: float | None) -> dict:
    seconds = timing["seconds_median"]
    achieved = flops["total"] / seconds / 1e12
    summary = {**timing, "flops": flops, "achieved_tflops": achieved}
    if peak is not None:
        summary["fraction_of_peak"] = achieved / peak
        summary["h20_estimate_seconds"] = seconds * peak / H20_DENSE_BF16_TFLOPS
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="flux-dev-f16")
    parser.add_argument("--size", type=int, default=4096, help="output side (px), a multiple of 32")
    parser.add_argument("--tile", type=int, default=2176, help="tile side (output px), a multiple of 32")
    parser.add_argument("--overlap", type=int, default=256, help="tile overlap (output px)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="this GPU's dense bf16 peak, if not in the table")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (a dry run at tiny size)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; this script times the GPU path (use --device cpu for a dry run)", file=sys.stderr)
        return 1
    if args.size % 32 or args.tile % 32 or args.tile > args.size or not 0 < args.overlap < args.tile:
        print("error: size and tile must be multiples of 32, tile <= size, 0 < overlap < tile", file=sys.stderr)
        return 2
    from op4ksr_bench.methods.tiling import TiledMethod, tile_starts

    dtype = torch.bfloat16
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak, peak_source = (
        (args.peak_tflops, "--peak-tflops") if args.peak_tflops else (dense_bf16_peak(name) or (None, None))
    )
    method = build_method(args.config, device, dtype)
    weights_gib = torch.cuda.memory_allocated(device) / 1024**3 if device.type == "cuda" else None
    scale = method.scale
    lr = torch.rand(1, 3, args.size // scale, args.size // scale, generator=torch.Generator().manual_seed(0))
    lr = lr.to(device)
    tiled = TiledMethod(method, tile=args.tile, overlap=args.overlap, blend="linear")
    stride = args.tile - args.overlap
    tiles = len(tile_starts(args.size, args.tile, stride)) ** 2
    results = {
        "config": args.config,
        "size": args.size,
        "tile": args.tile,
        "overlap": args.overlap,
        "tiles": tiles,
        "device": name,
        "torch": torch.__version__,
        "dtype": "bfloat16",
        "weights_gib": weights_gib,
        "dense_bf16_peak_tflops": peak,
        "dense_bf16_peak_source": peak_source,
        "h20_dense_bf16_peak_tflops": H20_DENSE_BF16_TFLOPS,
        "paper_seconds_h20": PAPER_SECONDS_H20,
        "decode": "partitioned" if method.model.config.partitioned_decode else "plain",
    }
    with torch.inference_mode():
        patch_free = measure(lambda: method.upscale(lr), args.repeats, device)
        results["patch_free"] = summarise(patch_free, work_flops(args.config, args.size), peak)
        print(f"patch-free: {json.dumps(results['patch_free'])}", flush=True)
        try:
            tiled_timing = measure(lambda: tiled.upscale(lr), args.repeats, device)
        except ValueError as error:  # the tiling engine refuses non-finite tiles (random weights can overflow bf16)
            results["tiled"] = {"error": str(error)}
        else:
            results["tiled"] = summarise(tiled_timing, work_flops(args.config, args.size, args.tile, tiles), peak)
        print(f"tiled:      {json.dumps(results['tiled'])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


def report(results: dict) -> str:
    """Human-readable summary of :func:`main`'s results."""
    from reference_model.cost import _flop

    lines = [f"{results['config']} at {results['size']}x{results['size']} on {results['device']}, bf16, "
             f"{results['decode']} decode, torch {results['torch']}"]  # fmt: skip
    if results["weights_gib"] is not None:
        lines.append(f"  weights on the GPU: {results['weights_gib']:.2f} GiB")
    for mode in ("patch_free", "tiled"):
        entry = results[mode]
        label = "patch-free" if mode == "patch_free" else f"tiled ({results['tiles']} x {results['tile']} px)"
        if "error" in entry:
            lines.append(f"  {label}: not timed: {entry['error']}")
            continue
        line = (f"  {label}: {entry['seconds_median']:.3f} s (median of {len(entry['seconds_all'])}), "
                f"{_flop(entry['flops']['total'])}, {entry['achieved_tflops']:.3g} TFLOP/s")  # fmt: skip
        if entry["peak_allocated_gib"] is not None:
            line += f", peak {entry['peak_allocated_gib']:.2f} GiB allocated"
        if "h20_estimate_seconds" in entry:
            line += f"; H20 estimate {entry['h20_estimate_seconds']:.2f} s (paper: {results['paper_seconds_h20']} s)"
        lines.append(line)
    if results["dense_bf16_peak_tflops"]:
        here, source = results["dense_bf16_peak_tflops"], results["dense_bf16_peak_source"]
        lines.append(f"  peaks used: {here} TFLOP/s here ({source}), {H20_DENSE_BF16_TFLOPS} TFLOP/s for the H20")
    else:
        lines.append("  no dense bf16 peak known for this device (pass --peak-tflops): no H20 estimate")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
