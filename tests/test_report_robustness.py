"""The report's robustness section: built from a run whose prediction folder loses known objects
under each condition, so every recall on the page is known by hand (and checked against the run's
robustness.csv / robustness_summary.csv, which the section must show unchanged)."""
from __future__ import annotations

import base64
import json
import math
import shutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from test_report import marked

from harness.data.imageio import write_label_png
from harness.errors import UserError
from harness.report.build import Options, build_report
from harness.run.command import run_from_args

SIZE = 160
CLASSES = ["sky", "car", "bird"]            # sky: stuff; car: seen thing; bird: unseen thing
LARGE = (0, 0, 100, 1)                      # (y, x, side, class): area 10,000 (large)
MEDIUM = [(2, 110, 40, 1), (50, 110, 40, 2)]                                   # area 1,600 each
SMALL = [(110, 10, 8, 1), (110, 30, 8, 2), (110, 50, 8, 1), (110, 70, 8, 2)]   # area 64 each
# Under each condition the prediction folder "mine" misses these small and medium objects (indices).
DROPS = {"fog-1": ([0], []), "fog-3": ([0, 1, 2], []), "snow-2": ([0, 1], []), "snow-5": ([0, 1, 2, 3], [1]),
         "resolution-0.5": ([0, 1], []), "resolution-0.25": ([0, 1, 2, 3], [0, 1]), "jpeg-20": ([], [])}
N_IMAGES = 3
PROTOCOL = {
    "name": "rob",
    "families": {"standard": {}, "size": {"buckets": {"small": [0, 1024], "medium": [1024, 9216],
                                                       "large": [9216, 20000], "huge": [20000, None]}}},
    "conditions": list(DROPS),
    "robustness": {"reference": "drop_small", "bootstrap": 20},
    "models": [{"name": "oracle", "baseline": "oracle"},
               {"name": "drop_small", "baseline": "drop_small", "max_area": 1024}],
}


def stub_corruptions() -> types.ModuleType:
    """Stands in for harness.conditions.corruptions (the ImageNet-C library, an extra): a darkening
    by severity, deterministic, so that runs, saved inputs and pictures made again agree."""
    stub = types.ModuleType("harness.conditions.corruptions")
    stub.version = lambda: "test-stub-1"
    stub.corrupt = lambda image, name, severity, seed: (image.astype(np.float64) * (1 - severity / 7)).astype(np.uint8)
    return stub


@pytest.fixture(scope="module", autouse=True)
def corruption_library():
    mp = pytest.MonkeyPatch()
    mp.setitem(sys.modules, "harness.conditions.corruptions", stub_corruptions())
    yield
    mp.undo()


def _square(label, y, x, side, cls):
    label[y:y + side, x:x + side] = cls


def make_data(root: Path, model="mine") -> tuple[Path, Path]:
    """The dataset (every image the same layout, its own texture) and the prediction folder of
    `model`: the ground truth when clean, without DROPS[condition]'s objects under a condition."""
    data, pred = root / "data", root / "pred"
    (data / "labels").mkdir(parents=True)
    (data / "images").mkdir()
    (data / "dataset.yaml").write_text(f"name: toy\nclasses: {json.dumps(CLASSES)}\nthings: [car, bird]\n"
                                       "unseen: [bird]\n")
    rng = np.random.default_rng(0)
    gt = np.zeros((SIZE, SIZE), np.uint8)
    for y, x, side, cls in [LARGE, *MEDIUM, *SMALL]:
        _square(gt, y, x, side, cls)
    for i in range(N_IMAGES):
        stem = f"img{i}"
        write_label_png(data / "labels" / f"{stem}.png", gt)
        colours = np.array([[120, 170, 235], [200, 40, 40], [240, 220, 60]], np.float64)
        image = colours[gt] + rng.normal(0, 12, (SIZE, SIZE, 3))
        cv2.imwrite(str(data / "images" / f"{stem}.png"), np.clip(image, 0, 255).astype(np.uint8)[:, :, ::-1])
        for condition in ["clean", *DROPS]:
            folder = pred if condition == "clean" else pred / condition
            folder.mkdir(parents=True, exist_ok=True)
            label = gt.copy()
            small, medium = DROPS.get(condition, ([], []))
            for y, x, side, _ in [SMALL[k] for k in small] + [MEDIUM[k] for k in medium]:
                _square(label, y, x, side, 0)
            write_label_png(folder / f"{stem}.png", label)
    return data, pred


def make_run(root: Path, out: Path, model="mine", protocol=PROTOCOL, save_inputs=True) -> Path:
    data, pred = make_data(root, model)
    protocol = {**protocol, "models": [*protocol["models"], {"name": model, "predictions": str(pred)}]}
    (root / "p.yaml").write_text(json.dumps(protocol))
    run_from_args(root / "p.yaml", data, [], out, workers=1, save_inputs=save_inputs)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rob")
    return make_run(root, root / "run")


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("rob_report")
    res = build_report([str(run)], out, Options(n_boot=20, figure_files=False, gallery_objects=0, gallery_worst=0,
                                                explorer_images=0))
    return res, res["html"].read_text()


# ----------------------------------------------------------------------------------------------
# the numbers by hand


def recall(condition: str, which: str, split: str = "") -> float:
    """mine's object recall (%) of a size bucket ('small', 'medium', 'large', 'all') and split
    ('' all, 'seen' cars, 'unseen' birds) under a condition, counted from the construction."""
    small, medium = DROPS.get(condition, ([], []))
    objects = [("large", LARGE, False)] + [("medium", o, k in medium) for k, o in enumerate(MEDIUM)] \
        + [("small", o, k in small) for k, o in enumerate(SMALL)]
    keep = [(b, missed) for b, o, missed in objects if (which in ("all", b))
            and (not split or (o[3] == 1) == (split == "seen"))]
    return 100 * sum(not missed for _, missed in keep) / len(keep)


def test_hand_counts_of_the_construction():
    """The hand counts the other tests compare with (the recall of the construction, not the code)."""
    assert [recall(c, "small") for c in ("clean", "fog-1", "fog-3", "snow-2", "snow-5")] == [100, 75, 25, 50, 0]
    assert recall("fog-1", "small", "seen") == 50 and recall("fog-1", "small", "unseen") == 100
    assert recall("snow-5", "all") == pytest.approx(100 * 2 / 7)


# ----------------------------------------------------------------------------------------------


def cells(html: str) -> dict:
    """The headline table: (model, metric, measure) -> (data-value, text)."""
    return {(a["data-rb-model"], a["data-rb-metric"], a["data-rb-measure"]): (a, t)
            for a, t in marked(html, "data-rb-measure")}


def heat_cells(html: str) -> dict:
    return {(a["data-heat-model"], a["data-heat-corruption"], a["data-heat-bucket"]): (a, t)
            for a, t in marked(html, "data-heat-bucket")}


def test_the_run_tables_hold_the_hand_counts(run):
    """The run stage's tables (what the section reads) hold the construction's recalls."""
    long = pd.read_csv(run / "robustness.csv")
    mine = long[long["model"] == "mine"].set_index(["condition", "metric"])
    for condition in ["clean", *DROPS]:
        for bucket in ("small", "medium", "large"):
            assert mine.loc[(condition, f"object_recall@{bucket}"), "value"] == pytest.approx(recall(condition, bucket))
            for split in ("seen", "unseen"):
                if bucket == "large" and split == "unseen":
                    continue  # no large bird
                assert mine.loc[(condition, f"object_recall_{split}@{bucket}"), "value"] == pytest.approx(
                    recall(condition, bucket, split)), (condition, bucket, split)


def test_headline_equals_the_run_tables_and_the_hand_counts(run, page):
    _, html = page
    found = cells(html)
    long = pd.read_csv(run / "robustness.csv")
    summary = pd.read_csv(run / "robustness_summary.csv")
    models = {m for m, _, _ in found}
    assert models == {"oracle", "drop_small", "mine"}
    metrics = {k for _, k, _ in found}
    assert metrics == {"mIoU", "object_recall@small", "mIoU_unseen", "hIoU"}   # no boundary family in this run
    checked = 0
    for (model, metric, measure), (a, text) in found.items():
        rows = long[(long["model"] == model) & (long["metric"] == metric)]
        if measure == "clean":
            want = rows.loc[rows["condition"] == "clean", "value"].item()
        elif measure in ("mPC", "rPC", "mCE", "relative_mCE"):
            hit = summary[(summary["model"] == model) & (summary["metric"] == metric)
                          & (summary["corruption"] == "imagenet_c") & (summary["measure"] == measure)]
            if not len(hit):
                assert a["data-value"] == "" and text == "—", (model, metric, measure)   # mCE of the reference
                continue
            want = hit["value"].item()
        elif measure in ("drop", "drop_ci", "drop_condition"):
            corrupted = rows[rows["condition"] != "clean"]
            largest = corrupted["difference"].max()
            row = corrupted[corrupted["difference"] == largest].iloc[0]
            if measure == "drop_condition":
                assert text.split()[0] == row["condition"]
                continue
            if measure == "drop_ci":
                assert float(a["data-lo"]) == row["difference_lo"] and float(a["data-hi"]) == row["difference_hi"]
                continue
            want = largest
        if isinstance(want, float) and math.isnan(want):
            assert a["data-value"] == "nan" and text == "n/a", (model, metric, measure)
        else:
            assert float(a["data-value"]) == want, (model, metric, measure)   # the file's number, unchanged
            decimals = 3 if measure in ("rPC", "mCE", "relative_mCE") else 2
            assert text == f"{want:.{decimals}f}", (model, metric, measure, text)
        checked += 1
    assert checked > 40
    # by hand: mine loses 1, 3, 2 and 4 of its 4 small objects under fog-1, fog-3, snow-2, snow-5;
    # drop_small (the reference) misses every small object: its error is 100 at every severity
    value = {(m, k, s): float(a["data-value"]) for (m, k, s), (a, _) in found.items() if a.get("data-value")}
    assert value[("mine", "object_recall@small", "clean")] == 100
    assert value[("mine", "object_recall@small", "mPC")] == pytest.approx((75 + 25 + 50 + 0) / 4)
    assert value[("mine", "object_recall@small", "rPC")] == pytest.approx(0.375)
    assert value[("mine", "object_recall@small", "mCE")] == pytest.approx(((25 + 75) / 200 + (50 + 100) / 200) / 2)
    assert value[("oracle", "object_recall@small", "mCE")] == 0
    assert value[("mine", "object_recall@small", "drop")] == 100
    drop_text = found[("mine", "object_recall@small", "drop_condition")][1]
    assert drop_text.startswith("snow-5") and "1 more" in drop_text   # resolution-0.25 loses them all too
    assert "(reference)" in html[html.index('id="robustness"'):]


def test_heat_table_equals_the_run_table_and_the_hand_counts(run, page):
    _, html = page
    found = heat_cells(html)
    long = pd.read_csv(run / "robustness.csv")
    assert {c for _, c, _ in found} == {"fog", "snow", "resolution", "jpeg"}
    assert {b for _, _, b in found} == {"small", "medium", "large", "huge", "all objects"}
    for (model, corruption, bucket), (a, text) in found.items():
        metric = "object_recall" if bucket == "all objects" else f"object_recall@{bucket}"
        rel = long[(long["model"] == model) & (long["metric"] == metric) & (long["corruption"] == corruption)]
        rel = rel["relative"].dropna()
        if not len(rel):
            assert a["data-value"] == "nan" and text == "no data" and "nodata" in a["class"], (model, corruption, bucket)
        else:
            assert float(a["data-value"]) == pytest.approx(rel.mean(), rel=1e-12)
            assert text == f"{rel.mean():.2f}" and "background: rgb(" in a["style"]
    value = {k: float(a["data-value"]) for k, (a, _) in found.items()}
    # by hand: relative recall = recall / clean recall (100), the mean over the corruption's levels
    assert value[("mine", "fog", "small")] == pytest.approx((0.75 + 0.25) / 2)
    assert value[("mine", "snow", "medium")] == pytest.approx((1 + 0.5) / 2)
    assert value[("mine", "resolution", "small")] == pytest.approx((0.5 + 0) / 2)
    assert value[("mine", "resolution", "all objects")] == pytest.approx((5 / 7 + 1 / 7) / 2)
    assert value[("mine", "jpeg", "small")] == 1 and value[("oracle", "snow", "small")] == 1
    assert math.isnan(value[("mine", "fog", "huge")])                # no object that large
    assert math.isnan(value[("drop_small", "fog", "small")])         # its clean small recall is 0


def test_example_inputs_one_per_corruption(run, page):
    res, html = page
    strip = [a for a, _ in marked(html, "data-thumb")]
    # clean, then one per corruption (ImageNet-C's order: snow before fog, then the knobs) at its middle
    # level, the one at index n // 2 of its sorted levels: snow 2, 5 -> 5; fog 1, 3 -> 3; resolution 0.25, 0.5 -> 0.5
    assert [a["data-thumb"] for a in strip] == ["clean", "snow-5", "fog-3", "resolution-0.5", "jpeg-20"]
    for a in strip:
        picture = base64.b64decode(a["src"].split(",", 1)[1])
        assert picture[:3] == b"\xff\xd8\xff"                       # JPEG
        assert cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    assert "saved input" in html and not marked(html, "data-thumb-missing")
    body = html.replace("http://www.w3.org", "")
    assert "http://" not in body and "https://" not in body        # self-contained


def test_report_csv_files(run, page):
    res, _ = page
    out = res["html"].parent
    mine = pd.read_csv(out / "robustness.csv")
    theirs = pd.read_csv(run / "robustness.csv")
    assert list(mine.columns) == ["model", "run", *theirs.columns.drop("model")]
    pd.testing.assert_frame_equal(mine.drop(columns="run"), theirs, check_dtype=False)
    summary = pd.read_csv(out / "robustness_summary.csv")
    assert len(summary) == len(pd.read_csv(run / "robustness_summary.csv"))
    heat = pd.read_csv(out / "robustness_heat.csv")
    row = heat[(heat["model"] == "mine") & (heat["corruption"] == "fog") & (heat["bucket"] == "small")].iloc[0]
    assert row["relative"] == pytest.approx(0.5) and row["n_levels"] == 2


@pytest.mark.slow  # two more runs and reports
def test_no_section_without_conditions_or_tables(run, tmp_path):
    plain = {k: v for k, v in PROTOCOL.items() if k not in ("conditions", "robustness")}
    clean_run = make_run(tmp_path / "a", tmp_path / "a" / "run", protocol=plain, save_inputs=False)
    assert not (clean_run / "robustness.csv").exists()
    opts = Options(n_boot=0, figure_files=False, gallery_objects=0, gallery_worst=0, explorer_images=0)
    html = build_report([str(clean_run)], tmp_path / "r1", opts)["html"].read_text()
    assert 'id="robustness"' not in html and not (tmp_path / "r1" / "robustness.csv").exists()
    # a run folder without its tables (an older version's): no section, no error
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "robustness.csv").unlink()
    html = build_report([str(old)], tmp_path / "r2", opts)["html"].read_text()
    assert 'id="robustness"' not in html
    # compare mode: each run with conditions has its part, the other is named
    html = build_report([str(run), str(clean_run)], tmp_path / "r3", opts)["html"].read_text()
    section = html[html.index('id="robustness"'):html.index('id="per-class"')]
    assert [a["data-rob-run"] for a, _ in marked(section, "data-rob-run")] == ["run"]
    assert "Run run#2 has no conditions besides clean" in section   # both folders are called run
    assert ("run/mine", "object_recall@small", "mPC") in cells(section)


@pytest.mark.parametrize("damage, needle", [
    (b"\x00\xff\xfe garbage \x81\n\x00", "cannot read robustness"),
    (b"model,condition\nmine,clean\n", "lacks the columns"),
])
def test_damaged_table_is_one_user_error(run, tmp_path, damage, needle):
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "robustness.csv").write_bytes(damage)
    with pytest.raises(UserError, match=needle) as err:
        build_report([str(broken)], tmp_path / "r", Options(n_boot=0, figure_files=False))
    assert "robustness.csv" in str(err.value) and "\n" not in str(err.value)


def test_a_number_that_is_not_a_number_is_damage(run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    table = (broken / "robustness_summary.csv").read_text().splitlines()
    table[1] = ",".join(table[1].split(",")[:-1] + ["12abc"])
    (broken / "robustness_summary.csv").write_text("\n".join(table) + "\n")
    with pytest.raises(UserError, match="robustness_summary.csv"):
        build_report([str(broken)], tmp_path / "r", Options(n_boot=0, figure_files=False))
