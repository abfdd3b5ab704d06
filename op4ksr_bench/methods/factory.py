"""Turn a method spec and ``--opt`` options into a ready :class:`~op4ksr_bench.methods.base.Method`.

Specs: a registered name (``bicubic``, ``lanczos``, ``realesrgan-x4plus``, ``op4ksr``) or ``family:ARG`` with
family ``spandrel`` (a weights file), ``folder`` (precomputed outputs), ``external`` (a card name or a YAML
card file) or ``python`` (``MODULE:CALLABLE``: :mod:`op4ksr_bench.methods.python`).
Options are the method's constructor keyword arguments; ``tile``, ``overlap`` and ``blend`` are
taken out and wrap the method in the tiling engine (:class:`~op4ksr_bench.methods.tiling.TiledMethod`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

import yaml

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods import FAMILIES, METHODS, PARAMETRISED
from op4ksr_bench.methods.base import Method

TILING_KEYS = ("tile", "overlap", "blend")


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["tile=512", "blend=gaussian"]`` -> ``{"tile": 512, "blend": "gaussian"}`` (values as YAML scalars).

    Raises:
        UsageError: a pair without ``=``, a repeated key, or a value that is a YAML list/mapping.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--opt {pair!r} is not KEY=VALUE")
        if key in options:
            raise UsageError(f"--opt {key} is given twice")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text  # not valid YAML: keep the literal text
        if isinstance(value, dict | list):
            raise UsageError(f"--opt {key}={text!r}: values are scalars (number, true/false, text), not YAML lists")
        options[key] = value
    return options


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"spandrel:/w/x.pth"`` -> ``("spandrel", "/w/x.pth")``; ``"bicubic"`` -> ``("bicubic", None)``."""
    family, sep, argument = spec.partition(":")
    if sep and family in PARAMETRISED:
        if not argument:
            raise UsageError(f"--method {spec!r}: {family}: needs an argument ({family}:PATH or {family}:NAME)")
        return family, argument
    return spec, None


def _construct(cls: type[Method], spec: str, kwargs: dict[str, Any]) -> Method:
    parameters = inspect.signature(cls.__init__).parameters
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    accepted = [
        name
        for name, parameter in parameters.items()
        if name not in ("self", "scale", "device", "dtype") and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = [] if takes_any else [key for key in kwargs if key not in parameters or key == "self"]
    if unknown:
        listed = ", ".join(accepted + list(TILING_KEYS)) or "only " + ", ".join(TILING_KEYS)
        raise UsageError(f"{spec}: unknown option(s) {', '.join(unknown)}; accepted: {listed}")
    try:
        return cls(**kwargs)
    except TypeError as error:  # a wrong value type caught by the constructor's own arithmetic
        raise UsageError(f"{spec}: bad option value ({error})") from error


def create_method(
    spec: str,
    *,
    scale: int = 4,
    device: str = "cpu",
    dtype: str = "float32",
    options: dict[str, Any] | None = None,
) -> Method:
    """Build the method named by ``spec`` with ``options``; wrap it in the tiling engine if asked.

    Args:
        spec: Registered name or ``family:ARG``.
        scale: Upscaling factor of the suite.
        device: Torch device string.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        options: Constructor keyword arguments plus the tiling keys ``tile``, ``overlap``, ``blend``.

    Raises:
        UsageError: unknown method or option, bad value.
        WeightsMissingError: the method's weights are not present (one line naming the file).
    """
    options = dict(options or {})
    tiling = {key: options.pop(key) for key in TILING_KEYS if key in options}
    base_kwargs: dict[str, Any] = {"scale": scale, "device": device, "dtype": dtype}
    family, argument = split_spec(spec)
    if argument is not None:
        cls = FAMILIES.get(family)
        method = _construct(cls, spec, {**base_kwargs, **cls.family_arguments(argument, spec, options)})
    else:
        cls = METHODS.get(spec)
        method = _construct(cls, spec, {**base_kwargs, **options})
    if tiling:
        if "tile" not in tiling:
            raise UsageError("--opt overlap/blend need --opt tile=N (tile size in output pixels)")
        from op4ksr_bench.methods.tiling import TiledMethod

        method = TiledMethod(
            method, tile=tiling["tile"], overlap=tiling.get("overlap", 0), blend=tiling.get("blend", "gaussian")
        )
    return method


def method_slug(method: Method) -> str:
    """Folder-safe name of a configured method: its card name with other characters replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", method.card.name).strip("-") or "method"
