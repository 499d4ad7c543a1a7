"""Records: chunks committed by the writer read back whole, or with the pixel table summed per class."""
import numpy as np
import pandas as pd

from harness.run.records import RecordWriter, read_tables


def _tables(rng, n_classes):
    classes = np.sort(rng.choice(10, n_classes, replace=False)).astype(np.int64)
    pixel = {"class": classes, "intersect": rng.integers(0, 50, n_classes),
             "pred_area": rng.integers(50, 99, n_classes)}
    n_obj = int(rng.integers(0, 4))
    objects = {"class": rng.integers(0, 10, n_obj), "iou": rng.random(n_obj)}
    return {"pixel": pixel, "objects": objects, "fp_blobs": {}, "images": {"height": np.array([4])}}


def _write(model_dir, images, part=None, seed=0):
    rng = np.random.default_rng(seed)
    writer = RecordWriter(model_dir, chunk_size=2, part=part)
    written = {}
    for image in images:
        written[image] = _tables(rng, int(rng.integers(1, 5)))
        writer.add(image, written[image])
    writer.flush()
    return written


def test_read_back_sorted_and_pixel_sums(tmp_path):
    written = _write(tmp_path / "m", ["c", "a", "e", "b", "d"])  # 3 chunks, not in name order
    tables = read_tables(tmp_path / "m")
    assert tables["images"]["image"].tolist() == ["a", "b", "c", "d", "e"]
    expected_rows = sum(len(t["pixel"]["class"]) for t in written.values())
    assert len(tables["pixel"]) == expected_rows
    assert len(tables["objects"]) == sum(len(t["objects"]["class"]) for t in written.values())
    # per-class sums computed from what was written, by hand
    sums = {}
    for t in written.values():
        for c, i, p in zip(t["pixel"]["class"], t["pixel"]["intersect"], t["pixel"]["pred_area"]):
            s = sums.setdefault(int(c), [0, 0])
            s[0] += int(i)
            s[1] += int(p)
    summed = read_tables(tmp_path / "m", pixel_sums=True)["pixel"]
    assert "image" not in summed.columns
    assert summed["class"].tolist() == sorted(sums)
    assert summed["intersect"].tolist() == [sums[c][0] for c in sorted(sums)]
    assert summed["pred_area"].tolist() == [sums[c][1] for c in sorted(sums)]
    assert summed["intersect"].dtype == np.int64


def test_pixel_sums_keep_only_wanted_images_and_first_part(tmp_path):
    model = tmp_path / "m"
    first = _write(model, ["a", "b"], part="shard-0-of-2", seed=1)
    _write(model, ["b", "c"], part="shard-1-of-2", seed=2)  # 'b' again: the first part's is kept
    _write(model, ["c"], part="shard-1-of-2", seed=3)  # another chunk of part 1
    full = read_tables(model, images=["a", "b"])
    assert full["images"]["image"].tolist() == ["a", "b"]
    summed = read_tables(model, images=["a", "b"], pixel_sums=True)["pixel"]
    expected = (pd.concat([pd.DataFrame(first[im]["pixel"]) for im in ("a", "b")])
                .groupby("class", as_index=False).sum())
    pd.testing.assert_frame_equal(summed.reset_index(drop=True), expected.reset_index(drop=True))
