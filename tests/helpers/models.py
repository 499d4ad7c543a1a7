"""Model files the tests build: checkpoints of the tiny configs with seeded random weights."""
from __future__ import annotations


def save_checkpoint(config, path, **cfg_options):
    """A state dict of the tiny model with seeded random weights (mmengine checkpoint layout)."""
    import torch

    from harness.models import mmseg_predictor
    from harness.models.mmseg_model import MmsegSpec

    torch.manual_seed(0)
    spec = MmsegSpec(name="t", config=config, checkpoint=None, cfg_options=cfg_options)
    model = mmseg_predictor.build_model(spec, mmseg_predictor.load_config(spec), "cpu")
    torch.save({"state_dict": model.state_dict(), "meta": {"note": "test"}}, path)
    return path
