"""One image condition and a protocol's `conditions:` list.

    conditions:
      - clean                        # always evaluated first; listing it is optional
      - gaussian_noise-3             # one condition by its name: <transform>-<level>
      - corruptions: all             # ImageNet-C's 15 corruptions (or a list of their names)
        severities: [1, 2, 3, 4, 5]  # default: all five
        seed: 0                      # default 0; the noise of image s is a function of (seed, name, s)
      - resolution: [0.5, 0.25]      # the image downscaled by these factors (0 < f <= 1) before the model
      - jpeg: [50, 20, 10]           # JPEG quality 1-100
      - blur: [1, 2, 4]              # Gaussian blur, sigma in pixels
      - noise: [8, 16, 32]           # additive Gaussian noise, sigma in grey levels (0-255)
      - my_photoshop_edit            # any other plain name: a condition only prediction folders
                                     # have (PRED/my_photoshop_edit/<stem>.png); no transform

Every condition has a name that is one plain folder name (`gaussian_noise-3`, `resolution-0.5`,
`jpeg-20`): prediction folders hold a condition's maps in `<folder>/<name>/`, records live under
`condition=<name>`. For robustness tables a condition is (corruption, severity): the transform and
its level (severity 0 = clean).
"""
from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

from harness.conditions.corruptions import IMAGENET_C
from harness.errors import UserError

CLEAN = "clean"
NAMED = "named"  # a condition without a transform: only prediction folders have it
# The plain knobs: transform -> what its level is
KNOBS = {
    "resolution": "a downscale factor f, 0 < f <= 1",
    "jpeg": "a JPEG quality, an integer 1-100",
    "blur": "a Gaussian blur sigma in pixels, 0 < sigma <= 64",
    "noise": "a Gaussian noise sigma in grey levels, 0 < sigma <= 255",
}
TRANSFORMS = IMAGENET_C + tuple(KNOBS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_LEVELLED = re.compile(r"^(?P<transform>[A-Za-z0-9_.+]+)-(?P<level>[0-9][0-9.]*)$")


def _level_problem(transform: str, level) -> str | None:
    """Why `level` is not a level of `transform` (None when it is)."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or (isinstance(level, float)
                                                                          and not math.isfinite(level)):
        return f"level {level!r} must be a number"
    if transform in IMAGENET_C:
        if not isinstance(level, int):
            return f"severity {level!r} must be an integer 1-5"
        return None if 1 <= level <= 5 else f"severity {level!r} is outside 1-5"
    if transform == "resolution":
        return None if 0 < level <= 1 else f"resolution factor {level!r} must be > 0 and <= 1"
    if transform == "jpeg":
        return None if isinstance(level, int) and 1 <= level <= 100 else f"JPEG quality {level!r} must be an integer 1-100"
    if transform == "blur":
        return None if 0 < level <= 64 else f"blur sigma {level!r} must be > 0 and <= 64"
    if transform == "noise":
        return None if 0 < level <= 255 else f"noise sigma {level!r} must be > 0 and <= 255"
    raise AssertionError(transform)


def _format_level(level) -> str:
    return str(level) if isinstance(level, int) else f"{float(level):g}"


@dataclass(frozen=True)
class Condition:
    """What a model sees instead of the clean image. `transform`: clean, one of IMAGENET_C, one of
    KNOBS, or NAMED; `level`: 0 (clean, named), the severity 1-5, or the knob's value."""
    name: str
    transform: str = CLEAN
    level: float = 0
    seed: int = 0

    @classmethod
    def make(cls, transform: str, level, seed: int = 0) -> Condition:
        problem = _level_problem(transform, level)
        if problem:
            raise ValueError(problem)
        return cls(name=f"{transform}-{_format_level(level)}", transform=transform, level=level, seed=seed)

    @property
    def is_clean(self) -> bool:
        return self.transform == CLEAN

    @property
    def has_transform(self) -> bool:
        """Whether zeg-eval can make this condition's image (else only a prediction folder has it)."""
        return self.transform != NAMED

    @property
    def corruption(self) -> str:
        """The robustness tables' `corruption` column: the transform (clean, named: the name)."""
        return self.name if self.transform == NAMED else self.transform

    @property
    def severity(self) -> float:
        """The robustness tables' `severity` column: 0 clean, 1-5 for ImageNet-C, a knob's value."""
        return float("nan") if self.transform == NAMED else self.level

    def describe(self) -> dict:
        """JSON-able, for the manifest (from_description reads it back)."""
        return {"name": self.name, "transform": self.transform, "level": self.level, "seed": self.seed,
                "corruption": self.corruption, "severity": None if self.transform == NAMED else self.severity}

    @classmethod
    def from_description(cls, entry) -> Condition:
        """A manifest's condition entry (a dict, or a name as older run folders wrote it)."""
        if isinstance(entry, str):
            return named(entry)
        return cls(name=str(entry["name"]), transform=str(entry.get("transform", NAMED)),
                   level=entry.get("level", 0), seed=int(entry.get("seed", 0)))

    def identity(self):
        """What determines this condition's images, for record identity. The clean and named
        conditions are their name (as records made before transforms existed say); a transform adds
        its level, seed and the version of the code that makes it."""
        if self.transform in (CLEAN, NAMED):
            return self.name
        from harness.conditions.transforms import transform_version

        return {"name": self.name, "transform": self.transform, "level": self.level, "seed": self.seed,
                "version": transform_version(self.transform)}

    def check_available(self, who: str) -> None:
        """A UserError (one line naming `who` and what to install) when this condition's image cannot be
        made here: a condition without a transform, or an ImageNet-C corruption without its library.
        Models that look at images call it when they are opened, before anything is computed."""
        if not self.has_transform:
            raise UserError(f"{who}: condition '{self.name}' has no image transform (known: clean, "
                            "<corruption>-<severity>, resolution-<f>, jpeg-<q>, blur-<sigma>, noise-<sigma>); a "
                            "condition of your own needs a prediction folder with a subfolder of its name")
        if self.transform in IMAGENET_C:
            from harness.conditions import corruptions  # looked up at call time (tests stand in for it)

            problem = corruptions.library_problem()
            if problem:
                raise UserError(f"{who}: condition '{self.name}': {problem}")

    def warm_up(self) -> None:
        """Pay this condition's one-off costs in this process, before workers are forked from it, so
        that every worker inherits them instead of paying them again: importing the corruption
        library (numba, about 0.8 s) and numba's compilation of glass blur (4-6 s), done once on a
        small image at this condition's severity. Nothing for the knobs."""
        if self.transform in IMAGENET_C:
            self.apply(np.zeros((32, 32, 3), np.uint8), "warm-up")

    def image_seed(self, stem: str) -> int:
        """The seed of this condition's randomness for image `stem`: a function of (seed, name, stem)
        only, the same in every process and on every machine (Python's hash() is not)."""
        text = f"{self.seed}\x00{self.name}\x00{stem}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1

    def apply(self, image: np.ndarray, stem: str) -> np.ndarray:
        """The image under this condition: HxWx3 uint8 RGB in, HxWx3 uint8 RGB out (smaller under a
        resolution condition). The clean image is returned as it is."""
        if self.is_clean:
            return image
        if not self.has_transform:
            raise UserError(f"condition '{self.name}' has no image transform (only prediction folders have it)")
        from harness.conditions.transforms import apply_transform

        return apply_transform(image, self.transform, self.level, self.image_seed(stem))


CLEAN_CONDITION = Condition(CLEAN)


def named(name: str, *, where: str = "", path=None) -> Condition:
    """A condition from its name: clean, <transform>-<level>, or a plain name of your own. A name
    whose transform part is close to a known one but not it is refused ("did you mean")."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{where}condition {name!r} must be a plain name (letters, digits, '_', '-', '.', '+')", path)
    if name == CLEAN:
        return CLEAN_CONDITION
    m = _LEVELLED.match(name)
    if m is None:
        if name in TRANSFORMS:
            raise UserError(f"{where}condition '{name}' needs a level: e.g. '{name}-{_example(name)}'", path)
        return Condition(name, NAMED)
    transform, text = m["transform"], m["level"]
    if transform not in TRANSFORMS:
        close = difflib.get_close_matches(transform, TRANSFORMS, n=1, cutoff=0.75)
        if close:
            raise UserError(f"{where}unknown corruption '{transform}' in condition '{name}' (did you mean "
                            f"'{close[0]}'?)", path)
        return Condition(name, NAMED)
    try:
        level = int(text) if re.fullmatch(r"[0-9]+", text) else float(text)
    except ValueError:
        raise UserError(f"{where}condition '{name}': '{text}' is not a number", path) from None
    try:
        return Condition.make(transform, level)
    except ValueError as exc:
        raise UserError(f"{where}condition '{name}': {exc}", path) from None


def _example(transform: str) -> str:
    return {"resolution": "0.5", "jpeg": "20", "blur": "2", "noise": "16"}.get(transform, "3")


def _unknown(name, known, what: str) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
    return f"unknown {what} {name!r}{hint}"


def parse_conditions(node, path) -> tuple[Condition, ...]:
    """A protocol's `conditions:` (a composed YAML sequence node) -> its conditions, clean first.
    Every problem is one UserError naming the file and line."""
    import yaml

    from harness.config.yamlcfg import check_keys, mapping_items, to_python

    line = node.start_mark.line + 1
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise UserError(f"line {line}: conditions must be a non-empty list, e.g. [clean, gaussian_noise-3]", path)
    out: list[Condition] = [CLEAN_CONDITION]
    for item in node.value:
        where = f"line {item.start_mark.line + 1}: "
        if isinstance(item, yaml.ScalarNode):
            conditions = [named(to_python(item), where=where, path=path)]
        elif isinstance(item, yaml.MappingNode):
            items = mapping_items(item, path, where="a condition")
            check_keys(items, {"corruptions", "severities", "seed", *KNOBS}, path, where="a condition")
            conditions = _from_mapping({k: (to_python(v), ln) for k, v, ln in items}, where, path)
        else:
            raise UserError(f"{where}a condition must be a name or a mapping (corruptions, resolution, jpeg, blur, "
                            "noise)", path)
        for condition in conditions:
            if condition.is_clean:
                continue
            if any(c.name == condition.name for c in out):
                raise UserError(f"{where}condition '{condition.name}' is listed twice", path)
            out.append(condition)
    return tuple(out)


def _from_mapping(values: dict, where: str, path) -> list[Condition]:
    kinds = [k for k in ("corruptions", *KNOBS) if k in values]
    if len(kinds) != 1:
        raise UserError(f"{where}a condition mapping needs exactly one of corruptions, {', '.join(KNOBS)}"
                        + (f" (has {', '.join(kinds)})" if kinds else ""), path)
    kind = kinds[0]
    seed, seed_line = values.get("seed", (0, None))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"line {seed_line}: seed must be a non-negative integer, not {seed!r}", path)
    if kind == "corruptions":
        names, line = values["corruptions"]
        names = list(IMAGENET_C) if names == "all" else names
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise UserError(f"line {line}: corruptions must be 'all' or a list of names ({', '.join(IMAGENET_C)})",
                            path)
        for name in names:
            if name not in IMAGENET_C:
                raise UserError(f"line {line}: {_unknown(name, IMAGENET_C, 'corruption')}", path)
        severities, sev_line = values.get("severities", ([1, 2, 3, 4, 5], line))
        levels = [(n, s) for n in names for s in _levels(severities, sev_line, path, "severities")]
    else:
        if "severities" in values:
            raise UserError(f"line {values['severities'][1]}: severities go with corruptions; {kind} takes its "
                            f"values as a list ({kind}: [...])", path)
        given, line = values[kind]
        levels = [(kind, v) for v in _levels(given, line, path, kind)]
    out = []
    for transform, level in levels:
        try:
            out.append(Condition.make(transform, level, seed))
        except ValueError as exc:
            raise UserError(f"line {line if transform == kind else sev_line}: {transform}: {exc}", path) from None
    return out


def _levels(given, line, path, what: str) -> list:
    given = [given] if isinstance(given, (int, float)) and not isinstance(given, bool) else given
    if not isinstance(given, list) or not given:
        raise UserError(f"line {line}: {what} must be a number or a non-empty list of numbers", path)
    return given
