"""Reading label maps and images, with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from harness.errors import UserError

# OpenCV prints its own decoder warnings to stderr; we report a bad file ourselves, in one line.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PALETTE = 3  # IHDR colour type of an indexed-colour PNG (PNG spec, 11.2.2)


def is_palette_png(data: np.ndarray) -> bool:
    """Whether PNG bytes hold an indexed-colour (palette, PIL mode "P") image: the colour type byte
    of the IHDR chunk, which the PNG spec puts first, at offset 25 (8 signature + 8 chunk header + 9)."""
    return data.size > 25 and data[:8].tobytes() == PNG_SIGNATURE and int(data[25]) == PNG_PALETTE


def _palette_indices(data: np.ndarray, path: Path) -> np.ndarray:
    """A palette PNG's indices (not its colours), as mmseg reads its labels (mmcv's pillow backend,
    flag 'unchanged'): VOC's SegmentationClass files are such images."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            image.load()
            indices = np.array(image)
    except (OSError, UnidentifiedImageError, ValueError):
        raise UserError("cannot decode image (corrupt palette PNG)", path) from None
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise UserError(f"cannot read the palette indices (PIL mode {image.mode})", path)
    return indices


def read_label_png(path: str | Path) -> np.ndarray:
    """A single-channel PNG (uint8 or uint16) as a 2-D array, unchanged (no colour conversion); a
    palette PNG gives its indices, as mmseg reads it (OpenCV would give the palette's colours)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    data = np.fromfile(path, dtype=np.uint8)
    if is_palette_png(data):
        return _palette_indices(data, path)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise UserError("cannot decode image (corrupt or not a PNG)", path)
    if array.ndim == 3:
        # a colour image: a label map must hold class ids, not colours
        raise UserError(f"expected a single-channel label map, got {array.shape[2]} channels", path)
    if array.dtype not in (np.uint8, np.uint16):
        raise UserError(f"expected uint8 or uint16 labels, got {array.dtype}", path)
    return array


def write_label_png(path: str | Path, labels: np.ndarray, dtype=None) -> None:
    """Write a label map as PNG: uint8 when every id fits, else uint16 (or the given dtype)."""
    labels = np.asarray(labels)
    if dtype is None:
        dtype = np.uint8 if labels.size == 0 or labels.max() < 256 else np.uint16
    ok, buffer = cv2.imencode(".png", labels.astype(dtype))
    if not ok:
        raise UserError("cannot encode PNG", path)
    Path(path).write_bytes(buffer.tobytes())


def read_rgb(path: str | Path) -> np.ndarray:
    """An image as HxWx3 uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    data = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise UserError("cannot decode image (corrupt or unsupported format)", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
