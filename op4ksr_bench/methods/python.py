"""A Python callable as a method: ``python:MODULE:CALLABLE`` on the command line, or a callable passed to
:func:`op4ksr_bench.api.evaluate`.

The callable takes one LR image and returns its super-resolved image, either as NumPy arrays
(``inputs="numpy"``, the default: ``uint8`` ``H x W x 3`` RGB in, ``uint8`` ``(H*s) x (W*s) x 3`` out) or as
torch tensors (``inputs="torch"``: ``float32`` ``[1, 3, H, W]`` in ``[0, 1]`` on the run's device in,
``[1, 3, H*s, W*s]`` in ``[0, 1]`` out). It runs in-process through the runner like any other method: same run
folder, resume, timing (the NumPy conversions are inside the timed call), output checks and failure handling.

Run identity: the method's name (default ``MODULE.QUALNAME``), its options, and the sha256 of the callable's own
source text (``code_sha256``) when Python can find it. Editing the callable's source therefore starts a new run;
a change elsewhere (new weights, an edited helper) does not, so name it with an option
(``--opt checkpoint=epoch12`` / ``options={"checkpoint": "epoch12"}``): extra options are recorded with the run
and are part of its identity.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.base import Method, MethodCard

if TYPE_CHECKING:
    import torch

Inputs = Literal["numpy", "torch"]
INPUTS = ("numpy", "torch")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_SCALARS = (str, int, float, bool, type(None))


def source_sha256(function: Callable) -> str | None:
    """sha256 of the callable's own source text (its class's for a callable object), or None if not findable."""
    target = function if inspect.isfunction(function) or inspect.ismethod(function) else type(function)
    try:
        return hashlib.sha256(inspect.getsource(target).encode("utf-8")).hexdigest()
    except (OSError, TypeError):
        return None


def default_name(function: Callable) -> str:
    """``MODULE.QUALNAME`` of a named function or callable object's class (``QUALNAME`` for ``__main__``).

    Raises:
        UsageError: a lambda or a function defined inside another function (no stable name): pass ``name``.
    """
    target = function if inspect.isfunction(function) or inspect.ismethod(function) else type(function)
    module = getattr(target, "__module__", None) or "callable"
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", "")
    if not qualname or "<" in qualname:
        raise UsageError(
            f"{function!r} has no stable name (a lambda or a nested function); pass name='my-method' so that its "
            "results get their own run folder"
        )
    return qualname if module == "__main__" else f"{module}.{qualname}"  # a notebook's or script's own function


class CallableMethod(Method):
    """Wraps a Python callable in the method contract (see the module docstring).

    Args:
        function: The callable.
        name: Method name in results and on the leaderboard (letters, digits, ``._+-``); default ``MODULE.QUALNAME``.
        inputs: ``numpy`` (``uint8`` HxWx3 arrays) or ``torch`` (``[1, 3, H, W]`` float tensors in [0, 1]).
        scale: Upscaling factor the runner asks for (the suite's).
        native_scale: The one factor the callable produces, if it has one: other scales then raise ``UsageError``
            (``--suite all`` skips those suites). Default: whatever ``scale`` asks for.
        device: Torch device the LR tensor is put on (``inputs="torch"``).
        dtype: Recorded only: the callable chooses its own precision.
        spec: How the callable was named (``python:MODULE:CALLABLE``), recorded in ``run.json``.
        card: MethodCard fields to set (``display_name``, ``paper``, ``licence``, ``family``, ``steps``,
            ``patch_free``); defaults: family ``external``, licence ``unknown``, 1 step, patch-free.
        **metadata: Scalar options recorded with the run and part of its identity (``checkpoint="epoch12"``).
    """

    @classmethod
    def family_arguments(cls, argument: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
        """``MODULE:CALLABLE`` is imported here; ``function`` and ``spec`` cannot be overridden by options."""
        function, name = load_callable(argument)
        return {"name": name, **options, "function": function, "spec": spec}

    def __init__(
        self,
        function: Callable,
        *,
        name: str | None = None,
        inputs: Inputs = "numpy",
        scale: int = 4,
        native_scale: int | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        spec: str | None = None,
        card: dict[str, Any] | None = None,
        **metadata: Any,
    ) -> None:
        if not callable(function):
            raise UsageError(f"{function!r} is not callable; pass a function taking an LR image")
        if inputs not in INPUTS:
            raise UsageError(f"inputs must be one of {list(INPUTS)}, got {inputs!r}")
        for key, value in (("scale", scale), ("native_scale", native_scale)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UsageError(f"{key} must be a positive integer, got {value!r}")
        name = default_name(function) if name is None else str(name)
        if not _NAME.match(name):
            raise UsageError(f"method name {name!r}: use letters, digits and . _ + - (it names the results folder)")
        for key, value in metadata.items():
            if not isinstance(value, _SCALARS):
                raise UsageError(f"option {key}={value!r}: options are scalars (text, number, true/false)")
        fields = {"display_name": name, "paper": "", "licence": "unknown", "family": "external", "steps": 1}
        unknown = sorted(set(card or {}) - {"display_name", "paper", "licence", "family", "steps", "patch_free"})
        if unknown:
            raise UsageError(f"card: unknown field(s) {', '.join(unknown)}")
        fields.update(card or {})
        scales = (scale,) if native_scale is None else (native_scale,)
        self.card = MethodCard(name=name, scales=scales, **fields)  # per instance: each callable has its own
        super().__init__(scale=scale, device=device, dtype=dtype)
        self.function = function
        self.inputs = inputs
        self.spec = spec or f"python:{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', '?')}"
        self.code_sha256 = source_sha256(function)
        self.metadata = dict(metadata)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "inputs": self.inputs, "code_sha256": self.code_sha256, **self.metadata}

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        if self.inputs == "torch":
            return self.function(lr)
        import numpy as np

        from op4ksr_bench.imageio import check_rgb8, from_tensor, to_tensor

        output = self.function(from_tensor(lr))  # exact: the LR tensor came from uint8 values / 255
        if not isinstance(output, np.ndarray):
            raise TypeError(f"the callable returned {type(output).__name__}, expected a uint8 HxWx3 numpy array")
        check_rgb8(output, "the callable's output")
        return to_tensor(output).to(lr.device)


def load_callable(target: str) -> tuple[Callable, str]:
    """``MODULE:CALLABLE`` or ``path/to/file.py:CALLABLE`` -> ``(callable, default name)``.

    ``CALLABLE`` may be dotted (``Class.method`` or ``object.attribute``).

    Raises:
        UsageError: malformed target, module not importable, attribute missing or not callable.
    """
    module_text, sep, attribute = target.rpartition(":")
    if not sep or not module_text or not attribute:
        raise UsageError(f"python:{target}: expected python:MODULE:CALLABLE or python:FILE.py:CALLABLE")
    if module_text.endswith(".py"):
        path = Path(module_text).expanduser()
        if not path.is_file():
            raise UsageError(f"python:{target}: no file {path}")
        module_name = path.stem
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(module_name, module)
        spec.loader.exec_module(module)
    else:
        module_name = module_text
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                raise UsageError(
                    f"python:{target}: cannot import {module_name!r}; put its folder on PYTHONPATH "
                    "(e.g. PYTHONPATH=. op4ksr-bench run ...) or give the file: python:path/to/file.py:CALLABLE"
                ) from None
            raise
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise UsageError(f"python:{target}: {module_name} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise UsageError(f"python:{target}: {attribute} is a {type(found).__name__}, not callable")
    return found, f"{module_name}.{attribute}"
