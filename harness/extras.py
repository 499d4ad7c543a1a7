"""The optional parts of zeg-eval (setup.cfg's extras) and the one line said when one is missing.

The plain install scores prediction folders, runs the baselines and writes reports. `mmseg` adds the
model stack (models with weights, the ZegCLIP port, mmseg dataset configs), `coco` what
`coco-instances` reads COCO's annotations with, `robustness` the ImageNet-C corruptions of the
condition axis. Modules are looked up without importing them.
"""
from __future__ import annotations

import importlib.util

from harness.errors import UserError

# extra -> the top-level modules it brings (keep in step with setup.cfg's extras_require)
EXTRAS = {
    "mmseg": ("torch", "mmcv", "mmengine", "mmseg", "ftfy", "regex"),
    "coco": ("pycocotools",),
    # the imaug fork of imagecorruptions (harness.conditions.corruptions checks it is the fork)
    "robustness": ("imagecorruptions",),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that are not installed."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def missing_message(extra: str) -> str | None:
    """'needs the extra ... (pip install ...; not installed: ...)', or None when it is installed."""
    absent = missing(extra)
    if not absent:
        return None
    return f"needs the extra '{extra}' (pip install 'zeg-eval[{extra}]'; not installed: {', '.join(absent)})"


def require(extra: str, what: str, path=None) -> None:
    """A UserError naming `what` (and the file) and the extra it needs, when that extra is not installed."""
    message = missing_message(extra)
    if message:
        raise UserError(f"{what} {message}", path)
