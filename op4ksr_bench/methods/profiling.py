"""Measuring a method call: device synchronisation and peak memory (``run.json`` records the machine, see
:func:`op4ksr_bench.results.environment_record`).

* GPU (``cuda``): ``torch.cuda.reset_peak_memory_stats`` before the call, ``torch.cuda.max_memory_allocated``
  after it: the largest amount of memory the caching allocator handed to tensors during the call, weights and
  inputs included.
* CPU: the increase of the process's peak resident set size over the call. On Linux the kernel's peak
  (``VmHWM``) is reset by writing ``5`` to ``/proc/self/clear_refs`` before the call and read from
  ``/proc/self/status`` after it, so each call gets its own peak. Where that is not allowed, a thread samples
  the RSS (psutil) every millisecond, which can miss spikes shorter than that; the kind recorded says which.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

MemoryKind = Literal["cuda-max-memory-allocated", "cpu-peak-rss-increase", "cpu-peak-rss-increase-sampled"]


def synchronize(device: str) -> None:
    """Wait for queued work on ``device`` (no-op on CPU) so a clock read after it includes that work."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    elif device.startswith("mps"):
        torch.mps.synchronize()


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class PeakMemory:
    """Context manager measuring the peak memory of the code inside it.

    Args:
        device: Torch device string of the call being measured.

    Attributes:
        kind: How the value is measured (see module docstring).
        bytes: The measured peak (after the block), or None if nothing could be measured.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes: int | None = None
        if device.startswith("cuda"):
            self.kind: MemoryKind = "cuda-max-memory-allocated"
        elif _can_reset_peak():
            self.kind = "cpu-peak-rss-increase"
        else:
            self.kind = "cpu-peak-rss-increase-sampled"
        self._baseline = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._sampled_peak = 0

    def __enter__(self) -> PeakMemory:
        if self.kind == "cuda-max-memory-allocated":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.kind == "cpu-peak-rss-increase":
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._baseline = (_status_kib("VmRSS") or 0) * 1024
        else:
            import psutil

            process = psutil.Process()
            self._baseline = process.memory_info().rss
            self._sampled_peak = self._baseline
            self._stop.clear()

            def sample() -> None:
                while not self._stop.wait(0.001):
                    self._sampled_peak = max(self._sampled_peak, process.memory_info().rss)

            self._sampler = threading.Thread(target=sample, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.kind == "cuda-max-memory-allocated":
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
        elif self.kind == "cpu-peak-rss-increase":
            peak = _status_kib("VmHWM")
            self.bytes = None if peak is None else max(peak * 1024 - self._baseline, 0)
        else:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join()
            self.bytes = max(self._sampled_peak - self._baseline, 0)
