"""Palette (PIL mode "P") PNGs, as VOC's SegmentationClass ships them, are read as their indices,
as mmseg reads them; labels and predictions alike."""
import numpy as np
import pytest
from PIL import Image

from harness.data.imageio import read_label_png
from harness.errors import UserError


def _palette_png(path, indices: np.ndarray) -> None:
    """Written by PIL with a palette whose colours are not the indices (VOC's: 1 -> (128, 0, 0))."""
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (128, 0, 0)
    palette[2] = (0, 128, 0)
    palette[255] = (224, 224, 192)
    image.putpalette(palette.ravel().tolist())
    image.save(path)


def test_palette_png_gives_its_indices(tmp_path):
    indices = np.zeros((6, 7), np.uint8)
    indices[1:3, 1:4] = 1
    indices[4, :] = 2
    indices[:, 6] = 255
    _palette_png(tmp_path / "a.png", indices)
    with Image.open(tmp_path / "a.png") as check:
        assert check.mode == "P"  # the file really is indexed colour
    got = read_label_png(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.shape == (6, 7)
    np.testing.assert_array_equal(got, indices)


def test_rgb_png_is_still_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), mode="RGB").save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="3 channels"):
        read_label_png(tmp_path / "rgb.png")


def test_corrupt_palette_png_is_one_line(tmp_path):
    _palette_png(tmp_path / "a.png", np.ones((8, 8), np.uint8))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "bad.png").write_bytes(data[:40])  # the header survives, the pixels do not
    with pytest.raises(UserError, match="bad.png"):
        read_label_png(tmp_path / "bad.png")


def test_voc12_preset_reads_segmentationclass_as_shipped(tmp_path, capsys):
    """VOC's layout and palette files under the `voc12` preset, predictions (train ids) as palette PNGs too:
    0 = background (ignored, reduce_zero_label), 1..20 = classes, 255 = border (ignored)."""
    root = tmp_path / "VOC2012"
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    (root / "dataset.yaml").write_text("preset: voc12\n")
    gt = np.zeros((4, 6), np.uint8)
    gt[:, 0] = 255           # border: ignored
    gt[0:2, 1:4] = 1         # aeroplane, 6 px
    gt[2:4, 1:3] = 15        # person, 4 px
    _palette_png(root / "SegmentationClass" / "2007_000033.png", gt)
    # predictions are train ids (aeroplane 0, person 14); on ignored pixels they do not count
    pred = np.where(gt == 15, 14, 0).astype(np.uint8)
    pred[0, 1] = 14          # one aeroplane pixel predicted as person
    (tmp_path / "pred").mkdir()
    _palette_png(tmp_path / "pred" / "2007_000033.png", pred)

    from harness.cli import main

    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: p\nfamilies: {standard: {}}\n")
    rc = main(["run", str(protocol), "--data", str(root), "--predictions", f"m={tmp_path / 'pred'}",
               "--out", str(tmp_path / "run"), "--workers", "0"])
    assert rc == 0, capsys.readouterr().err
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["m"]
    # aeroplane: I 5, U 6 -> 83.33; person: I 4, U 5 -> 80; every other class absent (NaN, skipped)
    assert summary["mIoU"] == pytest.approx((500 / 6 + 80) / 2, abs=0.01)
    assert summary["aAcc"] == pytest.approx(100 * 9 / 10, abs=0.01)
