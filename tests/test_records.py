"""Records: chunks committed by the writer read back whole, or with the pixel table summed per class;
parts of a split run merge; a damaged chunk is found, deleted and its images counted as pending."""
import numpy as np
import pandas as pd
import pytest

from harness.errors import UserError
from harness.run.records import (
    RecordSet,
    RecordWriter,
    done_images,
    read_tables,
    record_sets,
)


def _tables(rng, n_classes):
    classes = np.sort(rng.choice(10, n_classes, replace=False)).astype(np.int64)
    pixel = {"class": classes, "intersect": rng.integers(0, 50, n_classes),
             "pred_area": rng.integers(50, 99, n_classes)}
    n_obj = int(rng.integers(0, 4))
    objects = {"class": rng.integers(0, 10, n_obj), "iou": rng.random(n_obj)}
    return {"pixel": pixel, "objects": objects, "fp_blobs": {}, "images": {"height": np.array([4])}}


def _write(records, images, part="whole", seed=0):
    rng = np.random.default_rng(seed)
    writer = RecordWriter(records, chunk_size=2, part=part)
    written = {}
    for image in images:
        written[image] = _tables(rng, int(rng.integers(1, 5)))
        writer.add(image, written[image])
    writer.flush()
    return written


def test_read_back_sorted_and_pixel_sums(tmp_path):
    records = RecordSet(tmp_path, "m")
    written = _write(records, ["c", "a", "e", "b", "d"])  # 3 chunks, not in name order
    tables = read_tables(records)
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
    summed = read_tables(records, pixel_sums=True)["pixel"]
    assert "image" not in summed.columns
    assert summed["class"].tolist() == sorted(sums)
    assert summed["intersect"].tolist() == [sums[c][0] for c in sorted(sums)]
    assert summed["pred_area"].tolist() == [sums[c][1] for c in sorted(sums)]
    assert summed["intersect"].dtype == np.int64


def test_pixel_sums_keep_only_wanted_images_and_first_part(tmp_path):
    records = RecordSet(tmp_path, "m")
    first = _write(records, ["a", "b"], part="shard-0-of-2", seed=1)
    _write(records, ["b", "c"], part="shard-1-of-2", seed=2)  # 'b' again: the first part's is kept
    _write(records, ["c"], part="shard-1-of-2", seed=3)  # another chunk of part 1
    full = read_tables(records, images=["a", "b"])
    assert full["images"]["image"].tolist() == ["a", "b"]
    summed = read_tables(records, images=["a", "b"], pixel_sums=True)["pixel"]
    expected = (pd.concat([pd.DataFrame(first[im]["pixel"]) for im in ("a", "b")])
                .groupby("class", as_index=False).sum())
    pd.testing.assert_frame_equal(summed.reset_index(drop=True), expected.reset_index(drop=True))


def test_conditions_are_kept_apart_and_pandas_reads_the_layout(tmp_path):
    clean, blurred = RecordSet(tmp_path, "m"), RecordSet(tmp_path, "m", "blur")
    _write(clean, ["a", "b"])
    _write(blurred, ["a"], seed=5)
    assert done_images(clean) == {"a", "b"} and done_images(blurred) == {"a"}
    assert [(r.model, r.condition) for r in record_sets(tmp_path)] == [("m", "blur"), ("m", "clean")]
    images = pd.read_parquet(tmp_path / "records" / "images")  # hive partitions: model, condition columns
    assert sorted(zip(images["condition"].astype(str), images["image"])) == [("blur", "a"), ("clean", "a"),
                                                                               ("clean", "b")]


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncate"])
def test_a_damaged_chunk_is_recomputed_not_fatal(tmp_path, capsys, damage):
    records = RecordSet(tmp_path, "m")
    _write(records, ["a", "b", "c", "d"])  # chunks 0 (a, b) and 1 (c, d)
    victim = records.folder("pixel") / "whole-00001.parquet"
    victim.write_bytes(victim.read_bytes()[:40] if damage == "truncate" else damage)
    with pytest.raises(UserError, match="damaged record chunk whole-00001"):
        read_tables(records, strict=True)
    assert done_images(records) == {"a", "b", "c", "d"}  # the commit file itself is sound
    writer = RecordWriter(records, chunk_size=2)  # a rerun's writer finds it, deletes it, says so
    assert "damaged records of model 'm'" in capsys.readouterr().err
    assert done_images(records) == {"a", "b"}
    writer.add("c", _tables(np.random.default_rng(0), 2))
    writer.flush()
    assert read_tables(records)["images"]["image"].tolist() == ["a", "b", "c"]
