"""The interface of a model kind, and what every kind shares (no heavy imports here).

A model kind is one module with a spec dataclass (one entry of a protocol's `models:` list) and a
`ModelKind` subclass, registered in `harness.models.registry`. The kind:

* `parse(entry, where, base)`: the entry's fields checked and typed (a UserError names the line);
* `check(spec)`: what must hold before anything runs (e.g. the config file exists);
* `identity(spec)`: every setting that determines its predictions, digests of its weights included,
  as JSON-able data; records made under another identity are never reused (harness.run.identity);
* `open(spec, dataset, runtime)`: a `Predictor` for this run, or SkipModel (one line, recorded).

A predictor either runs in the metric workers (`predict(stem, gt, instances)`: baselines and
prediction folders, picklable) or in the main process as a stream (`stream(stems)`: models with
weights, which batch images on a device). Either way it reports what it ran with (`run_info()`:
device, precision, ...) as data, and names the file it reads for each image (`input_path`), whose
digest is recorded with the image.

Spec syntax (all kinds):

    models:
      - name: oracle                 # baselines: made from the ground truth, no weights
        baseline: oracle
      - name: other_codebase         # saved label maps <stem>.png
        predictions: preds/other
      - name: zegclip_coco           # an mmseg 1.x model (loader: mmseg) or ZegCLIP (loader: zegclip)
        config: configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py
        checkpoint: ${ZEGCLIP_COCO_CKPT:-checkpoints/zegclip_coco_inductive.pth}

Relative paths are looked up beside the protocol file first, then in the current folder.
`${VAR}` and `${VAR:-default}` are replaced from the environment; an unset variable without a
default leaves the path empty, and such a model is skipped like one whose checkpoint is missing.
Each kind's module documents its own keys.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.errors import UserError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Runtime:
    """How this run executes models with weights (the command line's settings)."""
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    precision: str | None = None        # overrides every model's own: fp32 | fp16 | bf16
    batch_size: int | None = None       # overrides every model's own
    loader_workers: int | None = None   # DataLoader workers decoding images


class Predictor:
    """What a kind opens for one run (see the module docstring)."""

    in_workers: bool = True   # predict() runs in the metric workers; else stream() in this process
    reads_images: bool = False  # it looks at the dataset's images (so an image condition changes its records)

    def predict(self, stem: str, gt: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def stream(self, stems: list[str]) -> Iterator[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def input_path(self, stem: str) -> Path | None:
        """The file this model reads for `stem` besides the ground truth (None: none)."""
        return None

    def where(self, stem: str):
        """What names a prediction in messages (its file, where it has one)."""
        return None

    def run_info(self) -> dict:
        """What it ran with (device, precision, ...), for the manifest."""
        return {}

    def under(self, condition) -> Predictor:
        """This model under an image condition (a harness.conditions.spec.Condition; clean: the images
        as they are), or a UserError when it cannot have it. A predictor made from the ground truth
        does not look at the image, so it is the same under every condition."""
        return self


class ModelKind:
    """Base class of a model kind (see the module docstring)."""

    name: str          # the kind, as the manifest records it
    key: str           # the entry key that selects it

    def matches(self, entry: dict) -> bool:
        return self.key in entry

    def parse(self, entry: dict, where: str, protocol_path: Path | None):
        raise NotImplementedError

    def check(self, spec) -> None:
        pass

    def describe(self, spec) -> dict:
        """A JSON-able description for the manifest."""
        return {"kind": self.name, **{k: _jsonable(v) for k, v in spec.__dict__.items()}}

    def identity(self, spec) -> dict:
        raise NotImplementedError

    def open(self, spec, dataset, runtime: Runtime) -> Predictor:
        raise NotImplementedError


def _jsonable(value):
    return str(value) if isinstance(value, Path) else value


# ---------------------------------------------------------------------------------------------
# shared by the kinds' parsers


def expand_vars(text: str) -> str:
    def repl(m):
        name = m["name"] or m["bare"]
        value = os.environ.get(name)
        if value:
            return value
        return m["default"] if m["default"] is not None else ""

    return _VAR.sub(repl, text)


def resolve_path(text: str, base: Path | None) -> Path:
    """A path from a protocol: variables expanded; relative = beside the protocol, else the cwd."""
    path = Path(expand_vars(text)).expanduser()
    if path.is_absolute() or base is None:
        return path
    beside = base / path
    if beside.exists() or not path.exists():
        return beside
    return path


def check_name(name, where: str, path) -> str:
    """A model's `name`: one plain name (it names folders and records), else a UserError naming the entry."""
    if not isinstance(name, str) or not NAME.match(name):
        raise UserError(f"{where}: a model needs a 'name' of letters, digits, '_', '-', '.', '+'", path)
    return name


def check_type(entry: dict, key: str, types, where: str, path, what: str):
    value = entry[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise UserError(f"{where}: '{key}' must be {what}", path)
    if not isinstance(value, types):
        raise UserError(f"{where}: '{key}' must be {what}", path)
    return value


def check_allowed(entry: dict, allowed: set, kind: str, where: str, path) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' for a {kind} model (allowed: {', '.join(sorted(allowed))})",
                        path)


def check_unique(specs, path=None) -> None:
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise UserError(f"two models are named '{spec.name}'; names must be unique", path)
        seen.add(spec.name)
