"""The spec of an mmseg model entry (harness.models.mmseg_model parses it; mmseg_predictor runs it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class MmsegSpec:
    name: str
    config: Path
    checkpoint: Path | None            # None: not given or its variable is unset
    checkpoint_text: str = ""          # as written (before variables and lookup), for messages
    loader: str = "mmseg"
    precision: str = "fp32"
    batch_size: int = 1
    weights_only: bool = True
    cfg_options: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "zegclip" if self.loader == "zegclip" else "mmseg"
