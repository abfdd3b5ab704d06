"""The Python API: the command line's functions for notebooks and training scripts.

Everything here goes through the same code as ``op4ksr-bench``: :func:`evaluate` calls the runner's
:func:`~op4ksr_bench.runner.run_suite` (same run folder and run id, resume, timing, output checks, per-image
failures), :func:`create_metric` builds metrics the way ``score`` and ``run`` do, and :func:`load_results` reads
the result files the leaderboard reads. Importing this module does not import torch; the functions do, when
they need it.

Example::

    import op4ksr_bench as ob

    frame = ob.evaluate("bicubic", "4ksr-syn", metrics=["psnr", "ssim"], limit=2)
    frame = ob.evaluate(my_upscale, "4ksr-syn")  # my_upscale(lr: uint8 HxWx3) -> uint8 (4H)x(4W)x3
    psnr = ob.create_metric("psnr", crop_border=4)(sr, hr)["psnr"]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from op4ksr_bench.errors import ImageError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from op4ksr_bench.data.manifest import BuiltSuite
    from op4ksr_bench.data.suites import SuiteSpec
    from op4ksr_bench.metrics.base import Metric

logger = logging.getLogger(__name__)

__all__ = [
    "MetricFunction",
    "Sample",
    "Suite",
    "create_metric",
    "evaluate",
    "list_methods",
    "list_metrics",
    "list_suites",
    "load_results",
    "load_suite",
]

ROW_FIELDS = ("status", "reason", "seconds", "peak_memory_bytes", "output")
"""Per-image fields of ``samples.jsonl`` that :func:`evaluate` and :func:`load_results` put in their frames."""


# --------------------------------------------------------------------------------------------------------- listings


def list_metrics() -> list[str]:
    """Registered metric names, in registry order (``op4ksr-bench ls metrics`` shows their details)."""
    from op4ksr_bench.metrics import METRICS

    return METRICS.names()


def list_methods() -> list[str]:
    """Registered method names and the shipped external cards as ``external:NAME``.

    Also accepted by :func:`evaluate` and ``run --method``: ``spandrel:PATH``, ``folder:PATH``,
    ``external:CARD.yaml``, ``python:MODULE:CALLABLE``, and Python callables (:func:`evaluate` only).
    """
    from op4ksr_bench.methods import METHODS
    from op4ksr_bench.methods.external import card_names

    return [*METHODS.names(), *(f"external:{name}" for name in card_names())]


def list_suites() -> list[str]:
    """Names of the defined suites (built or not; :func:`load_suite` says when one is not built)."""
    from op4ksr_bench.data.suites import suite_names

    return suite_names()


# ---------------------------------------------------------------------------------------------------------- metrics


class MetricFunction:
    """A metric as a function: ``metric(pred, ref=None) -> {name: value, "<name>.<detail>": value}``.

    ``pred`` and ``ref`` are ``uint8`` ``H x W x 3`` RGB arrays, or float tensors ``[3, H, W]`` / ``[1, 3, H, W]``
    in ``[0, 1]``, which are quantised to 8 bits exactly as the runner saves outputs: ``round(x * 255)``.
    Full-reference metrics need ``ref`` of the same size (nothing is resized).

    Attributes:
        metric: The underlying :class:`~op4ksr_bench.metrics.base.Metric` (``kind``, ``higher_is_better``,
            ``backend``, ``licence``, ``settings()``).
    """

    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def kind(self) -> str:
        return self.metric.kind

    @property
    def higher_is_better(self) -> bool:
        return self.metric.higher_is_better

    def settings(self) -> dict[str, Any]:
        """The preprocessing in effect (border crop, colour space, 4K policy ...), as recorded in results."""
        return self.metric.settings()

    def __call__(self, pred: Any, ref: Any = None) -> dict[str, float | None]:
        from op4ksr_bench.metrics.scoring import score_images

        if self.metric.kind == "FR" and ref is None:
            raise UsageError(f"{self.metric.name} is a full-reference metric: pass ref=, the ground-truth image")
        return score_images([self.metric], as_rgb8(pred, "pred"), None if ref is None else as_rgb8(ref, "ref"))

    def __repr__(self) -> str:
        return f"MetricFunction({self.metric.name!r}, settings={self.settings()!r})"


def as_rgb8(image: Any, name: str) -> np.ndarray:
    """``uint8`` HxWx3 arrays as they are; float tensors ``[3, H, W]`` or ``[1, 3, H, W]`` in [0, 1] as
    ``round(x * 255)``.

    Raises:
        ImageError: anything else, or a tensor with values outside [0, 1] or non-finite (never clamped).
    """
    import numpy as np

    from op4ksr_bench.imageio import check_rgb8

    if isinstance(image, np.ndarray):
        check_rgb8(image, name)
        return image
    if type(image).__module__.startswith("torch"):
        import torch

        tensor = image.detach()
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 4 or tensor.shape[:2] != (1, 3) or not tensor.is_floating_point():
            raise ImageError(
                f"{name}: expected a float tensor [3, H, W] or [1, 3, H, W] in [0, 1], got {tuple(image.shape)} "
                f"{image.dtype}"
            )
        low, high = (float(value) for value in torch.aminmax(tensor.float()))
        if not (0.0 <= low and high <= 1.0):
            raise ImageError(f"{name}: tensor values must lie in [0, 1], got min {low!r}, max {high!r}")
        from op4ksr_bench.imageio import from_tensor

        return from_tensor(tensor)
    check_rgb8(image, name)  # raises with what was given
    return image


def create_metric(name: str, *, crop_border: int = 0, device: str = "cpu", **options: Any) -> MetricFunction:
    """Build one metric by name, configured as ``score`` and ``run`` configure it.

    Args:
        name: A name from :func:`list_metrics`.
        crop_border: Pixels cropped from each side before full-reference metrics (suites use their scale).
        device: Torch device of learned metrics.
        **options: Further constructor options the metric takes: ``extra_periods`` (PAS/dPAS periods in px),
            ``tile_stride`` (a tiled method's stride in output px).

    Raises:
        UsageError: unknown metric (with "did you mean") or option.
        WeightsMissingError: the metric's weight files are missing (one line naming the file and where it goes).
    """
    from op4ksr_bench.metrics.scoring import create_metrics

    accepted = {"extra_periods", "tile_stride"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UsageError(f"create_metric({name!r}): unknown option(s) {', '.join(unknown)}; accepted: "
                         f"crop_border, device, {', '.join(sorted(accepted))}")  # fmt: skip
    metrics, _ = create_metrics(
        [name], crop_border=crop_border, device=device, extra_periods=tuple(options.get("extra_periods", ())),
        tile_stride=options.get("tile_stride"),
    )  # fmt: skip
    return MetricFunction(metrics[0])


# ----------------------------------------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class Sample:
    """One image of a built suite.

    Attributes:
        id: Image id (file stem).
        lr: ``uint8`` ``h x w x 3`` RGB low-resolution input.
        hr: ``uint8`` ``H x W x 3`` ground truth, or None for suites without one (real-world LR).
        entry: The manifest record (paths, sha256 of every file, sizes, source, licence, degradation).
    """

    id: str
    lr: np.ndarray
    hr: np.ndarray | None
    entry: dict[str, Any]


class Suite:
    """A built suite: iterate to get :class:`Sample` objects (images are read as they are reached).

    Attributes:
        name: Suite name.
        spec: The suite definition the data was built from (scale, crop_border, metrics, ...).
        hash: The suite hash recorded in every result.
        root: The suite's data folder.
    """

    def __init__(self, built: BuiltSuite) -> None:
        self._built = built
        self.name: str = built.spec.name
        self.spec: SuiteSpec = built.spec
        self.hash: str = built.hash
        self.root: Path = built.root

    def __len__(self) -> int:
        return len(self._built.entries)

    def __iter__(self) -> Iterator[Sample]:
        for entry in self._built.entries:
            yield self._sample(entry)

    def __getitem__(self, key: int | str) -> Sample:
        """A sample by position or by image id."""
        if isinstance(key, int):
            return self._sample(self._built.entries[key])
        return self._sample(self._built.entry(key))

    @property
    def ids(self) -> list[str]:
        return [entry["id"] for entry in self._built.entries]

    def _sample(self, entry: dict[str, Any]) -> Sample:
        from op4ksr_bench.imageio import read_image

        hr_path = self._built.hr_path(entry)
        return Sample(
            id=entry["id"],
            lr=read_image(self._built.lr_path(entry)),
            hr=None if hr_path is None else read_image(hr_path),
            entry=dict(entry),
        )

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, images={len(self)}, scale={self.spec.scale}, hash={self.hash[:12]!r})"


def _data_dir(data: str | Path | None) -> Path:
    from op4ksr_bench.paths import data_dir

    return Path(data).expanduser() if data is not None else data_dir()


def load_suite(name: str, data: str | Path | None = None) -> Suite:
    """Open a built suite.

    Args:
        name: A name from :func:`list_suites`.
        data: Data folder (default ``$OP4KSR_DATA`` or ``~/.cache/op4ksr-bench/data``).

    Raises:
        UsageError: unknown suite name.
        ManifestError: the suite is not built there (the message gives the build command).
    """
    from op4ksr_bench.runner import resolve_suites

    if "," in name or name == "all":
        raise UsageError(f"load_suite({name!r}): give one suite name; list_suites() lists them")
    (built,) = resolve_suites(name, _data_dir(data), logger.warning)
    return Suite(built)


# ---------------------------------------------------------------------------------------------------------- running


def evaluate(
    method: str | Callable,
    suite: str | Sequence[str],
    *,
    data: str | Path | None = None,
    metrics: Sequence[str] | str | None = None,
    results: str | Path | None = None,
    limit: int | None = None,
    options: dict[str, Any] | None = None,
    name: str | None = None,
    inputs: Literal["numpy", "torch"] = "numpy",
    scale: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run a method on suites through the runner of ``op4ksr-bench run`` and return the per-image results.

    Results are written where the command line writes them (``<results>/<suite>@v<version>/<method>/<run-id>/``)
    with the same run id, so the command line and this function resume each other's runs and the leaderboard
    shows them alike. A failing image becomes a row with ``status == "failed"`` and its ``reason``; the run goes on.

    Args:
        method: A method spec (``"bicubic"``, ``"spandrel:w.pth"``, ``"python:pkg.mod:upscale"``, see
            :func:`list_methods`) or a Python callable. With ``inputs="numpy"`` the callable takes the LR image as
            ``uint8`` ``h x w x 3`` RGB and returns ``uint8`` ``(h*s) x (w*s) x 3``; with ``inputs="torch"`` it
            takes and returns ``float32`` ``[1, 3, h, w]`` tensors in ``[0, 1]`` on ``device``.
        suite: A suite name, a list of names, or ``"all"`` (every built evaluation suite).
        data: Data folder (default ``$OP4KSR_DATA`` or ``~/.cache/op4ksr-bench/data``).
        metrics: Metric names (default: each suite's list, skipping metrics whose weights are missing).
        results: Results folder (default ``$OP4KSR_RESULTS`` or ``./results``).
        limit: Only the first ``limit`` images of each suite.
        options: Method options, as ``--opt KEY=VALUE`` (``tile``/``overlap``/``blend`` tile any in-process
            method). For a callable, scalar options are recorded with the run and are part of its identity.
        name: A callable's method name (default ``MODULE.QUALNAME``; required for lambdas).
        inputs: A callable's image type: ``numpy`` or ``torch``.
        scale: The one scale factor a callable produces: suites of another scale raise ``UsageError`` (with
            ``suite="all"`` they are skipped with a warning). Default: the callable is given every suite's scale.
        device: ``cpu``, ``cuda``, ``cuda:1`` ...
        dtype: ``float32``, ``bfloat16`` or ``float16`` (for a callable: recorded only).
        seed: Seed for any random choice of the method (per image: derived from this and the image id).
        progress: Print one progress line per image to stderr (else they go to the logger at INFO level).

    Returns:
        A DataFrame with one row per image: ``suite``, ``suite_version``, ``method``, ``run_id``, ``id``,
        ``status``, ``reason``, ``seconds``, ``peak_memory_bytes``, ``output`` (path inside ``run_path``),
        ``run_path`` and one column per metric value (``psnr``, ``pas.p16`` ...). ``frame.attrs["runs"]``
        lists the run folders.

    Raises:
        UsageError: unknown method, suite, metric or option.
        ManifestError: a named suite is not built.
        WeightsMissingError: the method's, or an explicitly named metric's, weight files are missing.
    """
    import torch

    from op4ksr_bench.methods.factory import create_method, method_slug
    from op4ksr_bench.paths import results_dir
    from op4ksr_bench.runner import resolve_suites, run_suite

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device={device!r}: CUDA is not available here; use device='cpu'")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit={limit!r} must be a positive integer")
    if isinstance(metrics, str):
        metrics = [item.strip() for item in metrics.split(",") if item.strip()]
    metric_names = list(metrics) if metrics is not None else None
    suite_text = suite if isinstance(suite, str) else ",".join(suite)
    options = dict(options or {})
    echo = _echo if progress else logger.info
    suites = resolve_suites(suite_text, _data_dir(data), _warn)
    root = Path(results).expanduser() if results is not None else results_dir()
    built_methods: dict[int, Any] = {}
    folders: list[Path] = []
    for built in suites:
        suite_scale = int(built.spec.scale)
        if suite_scale not in built_methods:
            try:
                built_methods[suite_scale] = _make_method(
                    method, scale=suite_scale, native_scale=scale, device=device, dtype=dtype, options=options,
                    name=name, inputs=inputs, create_method=create_method,
                )  # fmt: skip
            except UsageError as error:
                if suite_text == "all" and "supports scale" in str(error):
                    _warn(f"skipping {built.spec.name} (x{suite_scale}): {error}")
                    continue
                raise
        configured, spec = built_methods[suite_scale]
        outcome = run_suite(
            built, configured, spec=spec, user_options=_user_options(options, name, inputs, method),
            metric_names=metric_names, results_root=root, device=device, dtype=dtype, seed=seed, limit=limit,
            shard=None, echo=echo,
        )  # fmt: skip
        if outcome.failed:
            _warn(f"{built.spec.name}: {outcome.failed} image(s) failed with {method_slug(configured)}; see the "
                  "'status' and 'reason' columns")  # fmt: skip
        folders.append(outcome.folder)
    frame = _frame([_run_rows(folder, root) for folder in folders])
    frame.attrs["runs"] = [str(folder) for folder in folders]
    return frame


def _make_method(
    method, *, scale, native_scale, device, dtype, options, name, inputs, create_method
) -> tuple[Any, str]:
    """``(configured method, spec recorded in run.json)`` for a spec string or a callable."""
    if isinstance(method, str):
        if name is not None or inputs != "numpy" or native_scale is not None:
            raise UsageError("name=, inputs= and scale= are for Python callables; a method spec takes options=")
        return create_method(method, scale=scale, device=device, dtype=dtype, options=options), method
    if not callable(method):
        raise UsageError(f"method must be a method spec (see list_methods()) or a callable, got {method!r}")
    from op4ksr_bench.methods.factory import TILING_KEYS
    from op4ksr_bench.methods.python import CallableMethod

    tiling = {key: options[key] for key in TILING_KEYS if key in options}
    rest = {key: value for key, value in options.items() if key not in TILING_KEYS}
    configured = CallableMethod(
        method, name=name, inputs=inputs, scale=scale, native_scale=native_scale, device=device, dtype=dtype, **rest
    )
    spec = configured.spec
    if tiling:
        from op4ksr_bench.methods.tiling import TiledMethod

        if "tile" not in tiling:
            raise UsageError("options overlap/blend need tile=N (tile size in output pixels)")
        configured = TiledMethod(configured, tile=tiling["tile"], overlap=tiling.get("overlap", 0),
                                 blend=tiling.get("blend", "gaussian"))  # fmt: skip
    return configured, spec


def _user_options(options: dict[str, Any], name: str | None, inputs: str, method: Any) -> dict[str, Any]:
    if isinstance(method, str):
        return options
    return {**options, **({"name": name} if name else {}), "inputs": inputs}


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _warn(line: str) -> None:
    logger.warning(line.removeprefix("warning: "))


# ---------------------------------------------------------------------------------------------------------- results


def load_results(path: str | Path) -> pd.DataFrame:
    """Per-image rows of every run below ``path`` (a results folder or one run folder).

    Shard folders whose merged run exists are left out, as on the leaderboard; run folders whose files fail
    schema validation are skipped with a warning.

    Returns:
        A DataFrame with the columns of :func:`evaluate` (``suite``, ``suite_version``, ``method``, ``run_id``,
        ``id``, ``status``, ``reason``, ``seconds``, ``peak_memory_bytes``, ``output``, ``run_path``, one
        column per metric value).

    Raises:
        UsageError: ``path`` is not a folder.
    """
    from op4ksr_bench.report.runs import load_runs

    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"load_results({str(path)!r}): not a folder; give a results folder or a run folder")
    if (root / "run.json").is_file():
        return _frame([_run_rows(root, root.parent)])
    runs, skipped = load_runs(root)
    for item in skipped:
        logger.warning("skipping %s: %s", item.path, item.reason)
    return _frame([_rows(run.run, run.samples, run.folder) for run in runs])


def _run_rows(folder: Path, root: Path) -> list[dict[str, Any]]:
    from op4ksr_bench.results import load_run

    try:
        run, samples = load_run(folder)
    except ValueError as error:
        raise UsageError(str(error)) from error
    return _rows(run, samples, folder)


def _rows(run: dict[str, Any], samples: Sequence[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    suite = run.get("suite") or {}
    method = run.get("method") or {}
    rows = []
    for sample in sorted(samples, key=lambda item: (item.get("index", 0), item["id"])):
        row = {
            "suite": suite.get("name"), "suite_version": suite.get("version"),
            "method": (method.get("card") or {}).get("name"), "run_id": run.get("run_id"), "id": sample["id"],
        }  # fmt: skip
        row.update({field: sample.get(field) for field in ROW_FIELDS})
        row["run_path"] = str(folder)
        row.update(sample.get("metrics") or {})
        rows.append(row)
    return rows


def _frame(parts: Sequence[list[dict[str, Any]]]) -> pd.DataFrame:
    import pandas as pd

    columns = ["suite", "suite_version", "method", "run_id", "id", *ROW_FIELDS, "run_path"]
    rows = [row for part in parts for row in part]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    metric_columns = [column for column in frame.columns if column not in columns]
    return frame[[*columns, *metric_columns]]
