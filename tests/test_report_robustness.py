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

from harness.conditions.corruptions import IMAGENET_C
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
    stub.IMAGENET_C = IMAGENET_C  # the names are the real module's; only the pictures are stood in for
    stub.version = lambda: "test-stub-1"
    stub.library_problem = lambda: None
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
                assert a["data-condition"] == row["condition"]
                assert text.startswith(row["condition"]) if largest > 0 else text == "none lower than clean"
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
    assert "figures/robustness_heat" not in html   # without figure files the heat map (the table's numbers) is not drawn
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


def _examples(run_dir: Path) -> dict:
    """The example strip of a run folder, as the report makes it (no page, no figures)."""
    from harness.report import robustness
    from harness.report.build import Entry
    from harness.report.runs import load_runs
    from harness.report.stats import point_estimates

    runs, models = load_runs([str(run_dir)])
    entries = [Entry(model=m, point=point_estimates(m)) for m in models]
    (rr,) = robustness.load_all(runs, entries)
    return robustness.examples(rr)


def test_example_inputs_saved_made_again_or_a_note(run, tmp_path):
    saved = _examples(run)
    assert [t.source for t in saved["thumbs"]] == ["dataset image"] + ["saved input"] * 4
    # without RUN/inputs: made again from the dataset image; the transforms are deterministic and the
    # saved inputs lossless, so the very same pictures
    again = tmp_path / "again"
    shutil.copytree(run, again, ignore=shutil.ignore_patterns("inputs"))
    made = _examples(again)
    assert [t.source for t in made["thumbs"]] == ["dataset image"] + ["made again from the dataset image"] * 4
    assert [t.jpeg_b64 for t in made["thumbs"]] == [t.jpeg_b64 for t in saved["thumbs"]]
    assert made["stem"] == saved["stem"] == "img0" and not made["note"]
    # the saved inputs without the dataset: the conditions' pictures, the clean one not available
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["dataset"]["root"] = str(tmp_path / "gone")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    partly = _examples(moved)
    assert partly["thumbs"][0].jpeg_b64 is None and all(t.jpeg_b64 for t in partly["thumbs"][1:])
    assert not partly["note"]
    # neither: a note, no pictures
    shutil.rmtree(moved / "inputs")
    none = _examples(moved)
    assert not any(t.jpeg_b64 for t in none["thumbs"])
    assert "--save-inputs" in none["note"] and "not available" in none["note"]


def test_example_of_a_condition_that_cannot_be_made_again(run, tmp_path, monkeypatch):
    """Without the corruption library an ImageNet-C picture cannot be made again: that thumbnail says
    so, the others are shown."""
    again = tmp_path / "again"
    shutil.copytree(run, again, ignore=shutil.ignore_patterns("inputs"))
    broken = types.ModuleType("harness.conditions.corruptions")

    def corrupt(*args):
        raise UserError("needs the extra 'robustness'")

    broken.corrupt, broken.version, broken.library_problem = corrupt, lambda: "x", lambda: None
    broken.IMAGENET_C = IMAGENET_C
    monkeypatch.setitem(sys.modules, "harness.conditions.corruptions", broken)
    thumbs = {t.condition: t for t in _examples(again)["thumbs"]}
    assert thumbs["snow-5"].jpeg_b64 is None and "needs the extra 'robustness'" in thumbs["snow-5"].why
    assert thumbs["resolution-0.5"].jpeg_b64 and thumbs["clean"].jpeg_b64


@pytest.mark.slow  # a run and a report with figure files
def test_names_are_text_and_figures_for_a_paper(tmp_path):
    """Two runs in folders called `<b>$x^^2$` (HTML, and mathtext that would not even parse) and
    `=1+1` (a spreadsheet formula), so that their models are labelled `<b>$x^^2$/mine` and
    `=1+1/mine`: each run has its part, the names are shown as typed; the figures are written for a
    paper."""
    import matplotlib.pyplot as plt

    from harness.report import plots, robustness

    first = make_run(tmp_path, tmp_path / "<b>$x^^2$")
    second = tmp_path / "=1+1"
    shutil.copytree(first, second)
    model = "<b>$x^^2$/mine"
    res = build_report([str(first), str(second)], tmp_path / "rep",
                       Options(n_boot=10, gallery_objects=0, gallery_worst=0, explorer_images=0, figure_files=True))
    html = res["html"].read_text()
    section = html[html.index('id="robustness"'):html.index('id="per-class"')]
    assert "<b>" not in section and "&lt;b&gt;$x^^2$/mine" in section
    assert [a["data-rob-run"] for a, _ in marked(section, "data-rob-run")] == ["<b>$x^^2$", "=1+1"]
    assert (model, "object_recall@small", "mPC") in cells(section) and ("=1+1/mine", "fog", "small") in heat_cells(section)
    raw = (tmp_path / "rep/robustness.csv").read_text()
    assert "\n'=1+1/mine,'=1+1," in raw and "\n=1+1" not in raw     # model and run columns: not formulas
    assert set(pd.read_csv(tmp_path / "rep/robustness.csv")["model"]) == {
        f"{run}/{m}" for run in ("<b>$x^^2$", "'=1+1") for m in ("oracle", "drop_small", "mine")}
    for key in ("robustness_severity", "robustness_heat", "robustness_resolution"):
        for ext in ("svg", "pdf", "png"):
            assert (tmp_path / "rep/figures" / f"{key}.{ext}").stat().st_size > 1000
            assert f'href="figures/{key}.{ext}"' in section
    # the figures' lines are the tables' numbers: mine's small-object recall by severity (the mean
    # over fog and snow where both have one; severity 4: none) and by resolution factor
    rrs = res["data"]["robustness"]
    entries = res["data"]["entries"]
    col, styles = plots.colors([e.label for e in entries]), plots.linestyles(entries)
    with plots.style():
        fig = robustness.severity_figure(rrs, col, styles)
        fig.fig.canvas.draw()
        ax = next(a for a in fig.fig.axes if a.get_title() == "object_recall@small")
        line = next(ln for ln in ax.lines if ln.get_label() == model)
        assert list(line.get_xdata()) == [0, 1, 2, 3, 5]
        assert list(line.get_ydata()) == pytest.approx([recall(c, "small") for c in
                                                        ("clean", "fog-1", "snow-2", "fog-3", "snow-5")])
        titles = [a.get_title() for a in fig.fig.axes if a.get_visible()]
        assert titles[:3] == ["object_recall@small", "object_recall@medium", "object_recall@large"]
        assert {"object_recall_unseen@small", "mIoU", "mIoU_unseen"} <= set(titles)
        legend = next(a.get_legend() for a in fig.fig.axes if a.get_legend())
        holder = next(a for a in fig.fig.axes if a.get_legend())
        assert legend.get_window_extent().x0 >= holder.get_window_extent().x1    # outside the data
        assert model in [t.get_text() for t in legend.get_texts()]
        # the same model in the second run: the same numbers, told apart by line style
        twin = next(ln for ln in ax.lines if ln.get_label() == "=1+1/mine")
        assert list(twin.get_ydata()) == list(line.get_ydata()) and twin.get_linestyle() != line.get_linestyle()
        plt.close(fig.fig)
        fig = robustness.resolution_figure(rrs, col, styles)
        ax = next(a for a in fig.fig.axes if a.get_title() == "object_recall@small")
        line = next(ln for ln in ax.lines if ln.get_label() == model)
        assert list(line.get_xdata()) == [1, 0.5, 0.25]
        assert list(line.get_ydata()) == [recall(c, "small") for c in ("clean", "resolution-0.5", "resolution-0.25")]
        plt.close(fig.fig)


@pytest.mark.slow  # headless Chromium
def test_section_in_headless_chromium_at_phone_width(page):
    """The section renders without a console message and, at 390 px, without horizontal overflow:
    its tables scroll inside their boxes, the pictures shrink to the width."""
    from selenium.webdriver.common.by import By
    from test_report import chrome

    res, _ = page
    driver = chrome(1440, 900)
    try:
        driver.get(res["html"].resolve().as_uri())
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
        assert not [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        driver.set_window_size(390, 844)   # as tests/test_report.py does: a window opens at least 500 px wide
        width = driver.execute_script("return window.innerWidth")
        assert width <= 390
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        wide = driver.execute_script(
            "return Array.from(document.querySelectorAll('#robustness ~ *, #robustness ~ * *')).filter(e => e.closest('.scroll') === null"
            " && e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className)")
        assert not wide, wide
        heat = driver.find_element(By.CSS_SELECTOR, "td.heat")
        assert heat.is_displayed() and heat.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        thumbs = driver.find_elements(By.CSS_SELECTOR, "[data-thumb]")
        assert len(thumbs) == 5 and all(t.get_property("naturalWidth") == 160 for t in thumbs)
    finally:
        driver.quit()


def test_a_run_with_only_the_knobs(run):
    """Without an ImageNet-C corruption there is no imagenet_c group: mPC, rPC, mCE read "—", there
    are no severity curves; the resolution curves and the largest drop remain."""
    from harness.report import plots, robustness
    from harness.report.build import Entry
    from harness.report.runs import load_runs
    from harness.report.stats import point_estimates

    runs, models = load_runs([str(run)])
    entries = [Entry(model=m, point=point_estimates(m)) for m in models]
    (full,) = robustness.load_all(runs, entries)
    knobs = full.long[~full.long["corruption"].isin(["fog", "snow"])].reset_index(drop=True)
    summary = full.summary[full.summary["corruption"].isin(["resolution", "jpeg"])].reset_index(drop=True)
    rr = robustness.RunRobustness(run=full.run, long=knobs, summary=summary, conditions=full.conditions,
                                  models=full.models, reference=full.reference, buckets=full.buckets)
    assert rr.corruptions == ["resolution", "jpeg"]
    rows = {(r["model"], r["metric"]): r for r in robustness.headline_rows(rr, {})}
    mine = rows[("mine", "object_recall@small")]
    assert all(mine["cells"][m]["text"] == "—" for m in ("mPC", "rPC", "mCE", "relative_mCE"))
    assert mine["cells"]["clean"]["text"] == "100.00" and mine["drop"]["condition"] == "resolution-0.25"
    assert mine["drop"]["difference"] == 100 - recall("resolution-0.25", "small")
    col = plots.colors(rr.models)
    with plots.style():
        assert robustness.severity_figure([rr], col, {}) is None
        fig = robustness.resolution_figure([rr], col, {})
        assert fig is not None
        import matplotlib.pyplot as plt

        plt.close(fig.fig)
