"""``external:NAME``: a baseline that runs in its own repository and environment, driven through us.

Each baseline has a YAML card in ``op4ksr_bench/methods/external/`` (or any card file: ``external:PATH.yaml``)
holding its repository, licence, backbone, steps, the tile/overlap defaults of its own inference script
(converted to output pixels, with the source they were read from) and the command template that runs it on
a folder of LR images. The runner hands the method every pending image once (:meth:`ExternalMethod.prepare`):
the LR files are copied (never linked: a script that rewrites its inputs must not reach the suite) into
``<run>/work/input/<id>.png``, the command runs once in the repository with its
output in ``<run>/work/output``, and each output is then matched by image id, checked and scored like any
other method's. The command's log is kept in ``<run>/work/command.log``.

Template placeholders: ``{python}`` (default: the ``python`` found on PATH, resolved to its absolute path and
recorded; ``--opt python=PATH`` names the method's own environment), ``{repo}`` (the user's checkout; required
only when the card uses it: in its command, workdir or output, or as a key of its ``options``; the command
runs in ``workdir``, default ``{repo}`` when the card uses one, else ``<run>/work``),
``{input_dir}``, ``{output_dir}``, ``{scale}``, ``{seed}`` and every key of the card's ``options`` (weights
paths and the like, overridable with ``--opt KEY=VALUE``). The command template is split into arguments first
(shell-style quoting) and each value is then substituted inside its own argument, so a value never becomes
several arguments, whatever quotes the card uses; the command runs without a shell. Card defaults may refer to
other values (``{repo}/weights/x.ckpt``); values given with ``--opt`` are taken literally (braces included).
Timing is the batch's wall time divided over its images (``amortised``); peak memory is not measured
(the work happens in another process).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import string
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import yaml

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.base import Family, Method, MethodCard
from op4ksr_bench.safepaths import UnsafePathError, check_image_id, resolve_inside

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

BUILTIN_PLACEHOLDERS = ("input_dir", "output_dir", "scale", "id")
REQUIRED_FIELDS = ("name", "display_name", "repository", "licence", "backbone", "family", "steps", "command", "output")


@dataclass(frozen=True)
class ExternalCard:
    """What an external baseline is and how to run it (one YAML file).

    Attributes:
        name: Card name (``external:<name>``).
        display_name: Name for tables.
        repository: URL of the official repository.
        paper: Citation.
        licence: Licence of the code and weights, as the repository states it.
        non_commercial: True if the licence forbids commercial use.
        backbone: The generative prior (e.g. ``Stable Diffusion 2.1-base``).
        family: Method family (``diffusion-multistep``, ``diffusion-onestep``, ...).
        steps: Network evaluations per tile in the default setting.
        patch_free: False when the default inference tiles the image.
        tile: ``{size, overlap}`` in output pixels, ``blend``, ``units_in_script`` and ``source`` (where read).
        command: Command template (see module docstring).
        workdir: Working directory template (default: ``{repo}`` if the card uses a repository, else the run's
            work folder; see :meth:`effective_workdir`).
        output: Output file template relative to ``{output_dir}`` (``{id}`` is the image id).
        options: Defaults for the card's own placeholders (``null`` = the user must give it).
        notes: Free text: what the card author checked and where.
    """

    name: str
    display_name: str
    repository: str
    licence: str
    backbone: str
    family: str
    steps: int
    command: str
    output: str
    paper: str = ""
    non_commercial: bool = False
    patch_free: bool = False
    tile: dict[str, Any] = field(default_factory=dict)
    workdir: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @classmethod
    def load(cls, path: Path) -> ExternalCard:
        """Read and check a card file.

        Raises:
            UsageError: not YAML, missing or unknown fields, bad family.
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise UsageError(f"{path}: cannot read the external method card ({error})") from error
        if not isinstance(data, dict):
            raise UsageError(f"{path}: an external method card is a YAML mapping")
        missing = [key for key in REQUIRED_FIELDS if key not in data]
        if missing:
            raise UsageError(f"{path}: missing field(s) {', '.join(missing)}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if data["family"] not in get_args(Family):
            raise UsageError(f"{path}: family {data['family']!r} is not one of {', '.join(get_args(Family))}")
        return cls(**data)

    def effective_workdir(self) -> str:
        """The working folder template: ``workdir`` if the card sets it, else ``{repo}`` when the card uses a
        repository (``{repo}`` in its command or output, or ``repo`` among its options), else ``""`` (the run's
        work folder, ``<run>/work``)."""
        if self.workdir:
            return self.workdir
        uses_repo = "repo" in self.options or any("{repo}" in text for text in (self.command, self.output))
        return "{repo}" if uses_repo else ""

    def placeholders(self) -> list[str]:
        """Names used in the command, workdir and output templates, in order of appearance."""
        names: list[str] = []
        for template in (self.command, self.effective_workdir(), self.output):
            for _, name, _, _ in string.Formatter().parse(template):
                if name and name not in names:
                    names.append(name)
        return names

    def method_card(self) -> MethodCard:
        tile = self.tile or {}
        return MethodCard(
            name=f"external:{self.name}",
            display_name=self.display_name,
            paper=self.paper,
            licence=self.licence,
            non_commercial=bool(self.non_commercial),
            family=self.family,  # type: ignore[arg-type]
            steps=int(self.steps),
            patch_free=bool(self.patch_free),
            default_tile=tile.get("size"),
            default_overlap=tile.get("overlap"),
            scales=(4,),
        )


def card_names() -> list[str]:
    """Names of the shipped external cards (``op4ksr_bench/methods/external/*.yaml``), sorted."""
    folder = resources.files("op4ksr_bench.methods") / "external"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def find_card(name_or_path: str) -> Path:
    """The card file for a shipped name or a path to a ``.yaml`` card.

    Raises:
        UsageError: unknown name (the message lists the shipped ones).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    folder = resources.files("op4ksr_bench.methods") / "external"
    shipped = folder / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise UsageError(
        f"external:{name_or_path}: no such card; shipped: {', '.join(card_names())}, or give a path to a .yaml card"
    )


def copy_input(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` (a new file, never a hard link to the suite's own file)."""
    destination.unlink(missing_ok=True)
    shutil.copyfile(source, destination)


class ExternalMethod(Method):
    """A baseline run by its own inference script on a folder of LR images.

    Args:
        card: Shipped card name or path to a card file.
        timeout: Seconds the command may run (default: no limit).
        **values: Values for the card's placeholders (``repo``, ``python``, weights paths, ``seed``).
    """

    timing = "amortised"
    runs_in_process = False
    card = MethodCard(name="external", display_name="external", paper="", licence="", family="external", steps=0)

    @classmethod
    def family_arguments(cls, argument: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"card": argument, **options}

    def __init__(
        self,
        scale: int = 4,
        device: str = "cpu",
        dtype: str = "float32",
        card: str = "",
        timeout: float | None = None,
        **values: Any,
    ) -> None:
        self.card_path = find_card(card)
        self.external = ExternalCard.load(self.card_path)
        self.card = self.external.method_card()
        super().__init__(scale=scale, device=device, dtype=dtype)
        self.timeout = timeout
        placeholders = self.external.placeholders()
        allowed = set(placeholders) - set(BUILTIN_PLACEHOLDERS)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise UsageError(
                f"external:{self.external.name}: unknown option(s) {', '.join(unknown)}; "
                f"its command uses {', '.join(sorted(allowed)) or 'no options'}"
            )
        merged: dict[str, Any] = {"python": "python", "seed": 0, **self.external.options, **values}
        missing = [name for name in sorted(allowed) if merged.get(name) is None]
        if missing:
            flags = " ".join(f"--opt {name}=..." for name in missing)
            raise UsageError(f"external:{self.external.name} needs {flags} (see {self.card_path})")
        if "python" in allowed and merged["python"] == "python":  # the default: say which interpreter that is
            found = shutil.which("python")
            if found is None:
                raise UsageError(
                    f"external:{self.external.name}: no `python` on PATH; pass --opt python=PATH (the interpreter "
                    "of the method's own environment)"
                )
            merged["python"] = found
        # Card defaults may refer to other values ("{repo}/weights/x.ckpt"): expand them once. Values given
        # with --opt are literal (a path may contain braces).
        plain = {key: value for key, value in merged.items() if not (isinstance(value, str) and "{" in value)}
        plain.update({key: value for key, value in values.items()})
        try:
            self.values = {
                key: value.format(**plain) if isinstance(value, str) and "{" in value and key not in values else value
                for key, value in merged.items()
            }
        except (KeyError, IndexError, ValueError) as error:
            raise UsageError(f"{self.card_path}: an option default refers to an unknown value ({error})") from error
        self.outputs: dict[str, Path] = {}
        self.batch_seconds: float | None = None
        self.amortised_seconds: float | None = None
        self.failure: str | None = None

    def _render(self, template: str, extra: dict[str, Any]) -> str:
        return template.format(**{**self.values, **extra, "scale": self.scale})

    def _arguments(self, extra: dict[str, Any]) -> list[str]:
        """The command as arguments: the template is split first, then each argument is filled in on its own."""
        try:
            templates = shlex.split(self.external.command)
        except ValueError as error:
            raise UsageError(f"{self.card_path}: the command template does not parse ({error})") from error
        return [self._render(template, extra) for template in templates]

    def prepare(self, samples: Sequence[tuple[str, Path]], work_dir: Path) -> None:
        """Link the LR images into ``work_dir/input``, run the command once, index the outputs."""
        if not samples:
            return
        for folder in (Path(work_dir), Path(work_dir) / "input", Path(work_dir) / "output"):
            if folder.is_symlink():
                raise UsageError(f"{folder} is a symbolic link; remove it (the work folder is deleted and refilled)")
        work_dir = Path(work_dir).resolve()
        input_dir, output_dir = work_dir / "input", work_dir / "output"
        shutil.rmtree(input_dir, ignore_errors=True)
        input_dir.mkdir(parents=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        for image_id, path in samples:
            check_image_id(image_id, f"external:{self.external.name} input", UsageError)
            copy_input(Path(path), input_dir / f"{image_id}{Path(path).suffix or '.png'}")
        folders = {"input_dir": input_dir, "output_dir": output_dir}
        arguments = self._arguments(folders)
        workdir = self.external.effective_workdir()
        cwd = Path(self._render(workdir, folders)).expanduser() if workdir else work_dir
        if not cwd.is_dir():
            raise UsageError(f"external:{self.external.name}: working folder {cwd} does not exist (--opt repo=PATH)")
        log_path = work_dir / "command.log"
        logger.info("running %s in %s", shlex.join(arguments), cwd)
        start = time.perf_counter()
        with open(log_path, "wb") as log:
            log.write(f"$ cd {cwd} && {shlex.join(arguments)}\n".encode())
            log.flush()
            try:
                completed = subprocess.run(
                    arguments, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=self.timeout, check=False
                )
                return_code: int | None = completed.returncode
            except FileNotFoundError as error:
                return_code = None
                self.failure = f"cannot start {arguments[0]!r} ({error}); check --opt python / the command"
            except subprocess.TimeoutExpired:
                return_code = None
                self.failure = f"command exceeded --opt timeout={self.timeout} s (log: {log_path})"
        self.batch_seconds = time.perf_counter() - start
        self.amortised_seconds = self.batch_seconds / len(samples)
        if return_code not in (0, None):
            self.failure = f"command exited with code {return_code} (log: {log_path})"
        for image_id, _ in samples:
            relative = self._render(self.external.output, {"id": image_id})
            try:
                self.outputs[image_id] = resolve_inside(output_dir, relative, f"{self.card_path} output")
            except UnsafePathError as error:
                self.failure = str(error)

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        raise UsageError("an external method runs on folders; the runner calls prepare() and upscale_sample()")

    def upscale_sample(self, image_id: str, lr: torch.Tensor) -> torch.Tensor:
        from op4ksr_bench.imageio import read_image, to_tensor

        path = self.outputs.get(image_id)
        if path is None:
            raise RuntimeError(f"image {image_id!r} was not part of the external batch")
        if not path.is_file():
            reason = f"; {self.failure}" if self.failure else ""
            raise FileNotFoundError(f"external:{self.external.name} wrote no {path.name} in {path.parent}{reason}")
        return to_tensor(read_image(path))

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "card": str(self.card_path),
            "command": self.external.command,
            "values": {key: value for key, value in sorted(self.values.items())},
            "repository": self.external.repository,
            "backbone": self.external.backbone,
            "tile": self.external.tile,
            "timeout": self.timeout,
        }

    def periods(self) -> tuple[int, ...]:
        size, overlap = self.external.tile.get("size"), self.external.tile.get("overlap")
        if isinstance(size, int) and isinstance(overlap, int) and size > overlap:
            return (size - overlap,)
        return ()
