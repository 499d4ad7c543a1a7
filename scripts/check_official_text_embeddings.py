"""With an official ZegCLIP checkpoint (not downloadable here), check that our text tower and
tokenizer reproduce upstream's shipped class-embedding matrices.

    .venv/bin/python scripts/check_official_text_embeddings.py PATH/TO/voc_inductive.pth

Prints the minimum cosine similarity per class between our single-template VOC embeddings and
third_party/zegclip/text_embedding_voc12_single.npy (expect > 0.999; float16 storage).
"""
import sys
from pathlib import Path

import numpy as np
from mmengine.config import Config

import harness.zegclip  # noqa: F401
from harness.zegclip import text_embeddings

ROOT = Path(__file__).resolve().parents[1]


def main(checkpoint: str) -> int:
    config = ROOT / "configs/zegclip/zegclip_vitb16_512x512_voc12-20_inductive.py"
    names = Config.fromfile(str(config)).model.class_names
    ours = text_embeddings.compute_text_embeddings(names, "single", checkpoint, dtype="float32", trusted=True)
    reference = np.load(ROOT / "third_party/zegclip/text_embedding_voc12_single.npy").astype(np.float32)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    print(f"min cosine over {len(names)} classes: {cosine.min():.6f} (expect > 0.999)")
    return 0 if cosine.min() > 0.999 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
