"""`zeg-eval report`: numbers on the page equal the run records, the bootstrap, bad input, the
gallery, the CSVs, and the page in headless Chromium (which must be installed: apt-get install -y chromium)."""
from __future__ import annotations

import argparse
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from harness.data.imageio import write_label_png
from harness.errors import UserError
from harness.evaluation.aggregate import class_sums
from harness.evaluation.bootstrap import draw_weights
from harness.metrics import standard
from harness.report import add_arguments, command
from harness.report.build import Options, build_report
from harness.report.runs import load_runs
from harness.report.stats import Bootstrap, point_estimates
from harness.run.command import run_from_args

CLASSES = ["sky", "road", "car", "person", "sign"]
ALL_FAMILIES = "families:\n  standard: {}\n  size: {}\n  occlusion: {}\n  boundary: {}\n"


def make_data(root: Path, n=6, size=64, seed=0, classes=CLASSES, name="toy"):
    """A tiny dataset (labels + images) and three prediction folders: good, coarse, blind."""
    rng = np.random.default_rng(seed)
    (root / "data/labels").mkdir(parents=True)
    (root / "data/images").mkdir()
    (root / "data/dataset.yaml").write_text(
        f"name: {name}\nclasses: [{', '.join(classes)}]\nunseen: [{', '.join(classes[-2:])}]\n")
    preds = {m: root / "pred" / m for m in ("good", "coarse", "blind")}
    for p in preds.values():
        p.mkdir(parents=True)
    for i in range(n):
        gt = np.zeros((size, size), np.int32)
        gt[size // 2:] = 1
        for _ in range(5):
            c = int(rng.integers(2, 5))
            s = int(rng.integers(2, 12))
            y, x = rng.integers(0, size - s, 2)
            gt[y:y + s, x:x + s] = c
        gt[0:2, 0:2] = 255
        stem = f"img{i:03d}"
        write_label_png(root / "data/labels" / f"{stem}.png", gt)
        img = (rng.random((size, size, 3)) * 60 + (gt[..., None] % 5) * 40).astype(np.uint8)
        cv2.imwrite(str(root / "data/images" / f"{stem}.png"), img)
        g = np.where(gt == 255, 0, gt)
        good = g.copy()
        noise = rng.random(g.shape) < 0.01
        good[noise] = rng.integers(0, len(classes), noise.sum())
        small = cv2.resize(g.astype(np.uint8), (size // 8, size // 8), interpolation=cv2.INTER_NEAREST)
        coarse = cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)
        blind = np.where(g >= 3, 0, g)
        for m, arr in (("good", good), ("coarse", coarse), ("blind", blind)):
            write_label_png(preds[m] / f"{stem}.png", arr)
    return root / "data", preds


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data, preds = make_data(root / "toy")
    (root / "all.yaml").write_text("name: toy\n" + ALL_FAMILIES)
    (root / "std.yaml").write_text("name: toy_std\nfamilies:\n  standard: {}\n")
    out = {}
    run_from_args(root / "all.yaml", data, [f"good={preds['good']}", f"coarse={preds['coarse']}"],
                  root / "run1", workers=1)
    run_from_args(root / "all.yaml", data, [f"blind={preds['blind']}", f"good={preds['good']}"],
                  root / "run2", workers=1)
    run_from_args(root / "std.yaml", data, [f"blind={preds['blind']}"], root / "run_std", workers=1)
    other, other_preds = make_data(root / "other", n=4, seed=1, classes=["a", "b", "c", "d", "e", "f"], name="other")
    run_from_args(root / "std.yaml", other, [f"good={other_preds['good']}"], root / "run_other", workers=1)
    out.update(root=root, run1=root / "run1", run2=root / "run2", run_std=root / "run_std",
               run_other=root / "run_other", data=data, preds=preds)
    return out


class Cells(HTMLParser):
    """The summary table's value and delta cells: (kind, metric, model) -> (data-sort, text, classes)."""

    def __init__(self):
        super().__init__()
        self.cells, self._open, self.text = {}, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-metric" in a:
            kind = "delta" if "d" in (a.get("class") or "").split() else "value"
            self._open = (kind, a["data-metric"], a["data-model"], a.get("data-sort", ""), a.get("class", ""))
            self.text = []

    def handle_data(self, data):
        if self._open:
            self.text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._open:
            kind, metric, model, sort, cls = self._open
            self.cells[(kind, metric, model)] = (sort, "".join(self.text).strip(), cls)
            self._open = None


def parse(html_path: Path) -> dict:
    p = Cells()
    p.feed(Path(html_path).read_text())
    return p.cells


def report(paths, out, **kw):
    kw.setdefault("n_boot", 200)
    kw.setdefault("figure_files", False)   # the paper files (SVG, PDF, 300 dpi) are tested once, below
    return build_report([str(p) for p in paths], out, Options(**kw))


# ----------------------------------------------------------------------------------------------


def test_single_run_page_and_csv_equal_run_records(runs, tmp_path):
    res = report([runs["run1"]], tmp_path / "rep")
    cells = parse(res["html"])
    summary = json.loads((runs["run1"] / "summary.json").read_text())
    assert set(summary) == {"good", "coarse"}
    checked = 0
    for model, metrics in summary.items():
        for metric, value in metrics.items():
            sort, text, _ = cells[("value", metric, model)]
            if value is None:
                assert sort == "nan" and text == "n/a", (model, metric)
            else:
                assert float(sort) == pytest.approx(value, rel=1e-12, abs=1e-12), (model, metric)
                if metric.startswith(("mIoU", "aAcc", "object_recall", "boundary_IoU", "hIoU")):
                    assert text == f"{value:.2f}"
            checked += 1
    assert checked > 200  # every family is on the page
    # The CSV holds the same numbers as the run's own summary.csv (absent = empty).
    mine = pd.read_csv(tmp_path / "rep/summary.csv").set_index("model")
    theirs = pd.read_csv(runs["run1"] / "summary.csv").set_index("model")
    assert set(theirs["condition"]) == {"clean"}
    for col in theirs.columns.drop("condition"):
        np.testing.assert_allclose(mine.loc[theirs.index, col].to_numpy(float), theirs[col].to_numpy(float),
                                   rtol=1e-12, equal_nan=True)
    per_class = pd.read_csv(tmp_path / "rep/per_class.csv")
    run_pc = pd.read_csv(runs["run1"] / "per_class.csv")
    merged = per_class.merge(run_pc, on=["model", "class_id"], suffixes=("", "_run"))
    assert len(merged) == 2 * len(CLASSES)
    np.testing.assert_allclose(merged["IoU"], merged["IoU_run"], equal_nan=True)
    per_bucket = pd.read_csv(tmp_path / "rep/per_bucket.csv")
    assert {"n_objects", "object_recall_ci_lo", "object_recall_ci_hi", "family", "bucket"} <= set(per_bucket.columns)
    run_pb = pd.read_csv(runs["run1"] / "per_bucket.csv")
    assert per_bucket["n_objects"].sum() == run_pb["n_objects"].sum()
    # A single run: the first model is the baseline; one delta column set for the other.
    assert cells[("delta", "mIoU", "coarse")][0] and ("delta", "mIoU", "good") not in cells
    html = res["html"].read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing to fetch
    assert html.count("data:image/png;base64,") >= 6


def test_bootstrap_matches_resampling_the_records(runs):
    """The vectorised bootstrap equals, draw by draw, the metric recomputed on explicitly resampled records."""
    _, models = load_runs([runs["run1"]])
    model = models[1]
    point = point_estimates(model)
    boot = Bootstrap(models, n_boot=15, seed=3)
    dists = boot.distributions(model, point)
    assert {"mIoU", "hIoU", "boundary_IoU", "mIoU@band4px", "object_recall@small", "object_IoU@medium",
            "fp_blobs_per_image", "object_recall@occ_none", "mE_segment_oU"} <= set(dists)
    pixel, objects = model.tables["pixel"], model.tables["objects"]
    class_iou = boot.class_iou(model)
    assert class_iou.shape == (15, len(CLASSES))
    stems = boot.stems
    for b in range(15):
        counts = dict(zip(stems, boot.weights[b].astype(int)))
        rep = lambda df: df.loc[df.index.repeat(df["image"].map(counts).to_numpy())]  # noqa: E731
        sums = class_sums(rep(pixel), len(CLASSES))
        ref = standard.summary(*(sums[c] for c in standard.COUNT_COLUMNS), np.array([0, 0, 0, 1, 1], bool))
        assert dists["mIoU"][b] == pytest.approx(float(ref["mIoU"]), rel=1e-9)
        assert dists["hIoU"][b] == pytest.approx(float(ref["hIoU"]), rel=1e-9)
        small = rep(objects)
        small = small[small["area"] < 32 ** 2]
        assert dists["object_recall@small"][b] == pytest.approx(100 * small["hit"].mean(), rel=1e-9)
        # per-class IoU (the per-class table's delta intervals) under the same draw
        i, p, lab = (sums[c].astype(float) for c in standard.COUNT_COLUMNS)
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(class_iou[b], 100 * i / (p + lab - i), rtol=1e-12, equal_nan=True)
    # Seeded: the same draws again; rows are multinomial resamples of all images.
    np.testing.assert_array_equal(draw_weights(6, 15, 3), boot.weights)
    assert (boot.weights.sum(axis=1) == len(stems)).all()


@pytest.mark.slow  # renders whole reports (matplotlib, gallery)
def test_compare_paired_deltas_missing_families_and_model_sets(runs, tmp_path):
    res = report([runs["run1"], runs["run2"], runs["run_std"]], tmp_path / "cmp", baseline="coarse", seed=7)
    cells = parse(res["html"])
    data = res["data"]
    labels = [e.label for e in data["entries"]]
    assert labels == ["run1/good", "coarse", "run2/blind", "run2/good", "run_std/blind"]
    # The same predictions scored in two runs: paired deltas of exactly zero, zero-width interval.
    good1 = next(e for e in data["entries"] if e.label == "run1/good")
    good2 = next(e for e in data["entries"] if e.label == "run2/good")
    np.testing.assert_array_equal(good1.dists["mIoU"], good2.dists["mIoU"])
    # Deltas against the baseline equal the difference of the run records; blind never predicts the
    # unseen classes (person, sign), a significant loss.
    s1 = json.loads((runs["run1"] / "summary.json").read_text())
    s2 = json.loads((runs["run2"] / "summary.json").read_text())
    for metric in ("mIoU_unseen", "object_recall@small", "mIoU@band2px"):
        sort, text, cls = cells[("delta", metric, "run2/blind")]
        assert float(sort) == pytest.approx(s2["blind"][metric] - s1["coarse"][metric], rel=1e-12)
    sort, text, cls = cells[("delta", "mIoU_unseen", "run2/blind")]
    assert float(sort) < 0 and "sig" in cls and "worse" in cls
    long = pd.read_csv(tmp_path / "cmp/summary_long.csv")
    row = long[(long.model == "run1/good") & (long.metric == "mIoU")].iloc[0]
    assert row.ci_lo <= row.value <= row.ci_hi and row.baseline == "coarse"
    assert row.delta_ci_lo <= row.delta <= row.delta_ci_hi
    # A run without the size family: its cells say "absent" (not 0), in the page and in the CSV.
    sort, text, cls = cells[("value", "object_recall@small", "run_std/blind")]
    assert text == "absent" and sort == "" and "absent" in cls
    assert long[(long.model == "run_std/blind") & (long.metric == "object_recall@small")].status.item() == "absent"
    assert float(cells[("value", "mIoU", "run_std/blind")][0]) == pytest.approx(s2["blind"]["mIoU"])
    # Same seed -> same intervals.
    again = report([runs["run1"], runs["run2"], runs["run_std"]], tmp_path / "cmp2", baseline="coarse", seed=7)
    pd.testing.assert_frame_equal(long, pd.read_csv(tmp_path / "cmp2/summary_long.csv"))
    assert again["html"].is_file()


def test_different_datasets_are_flagged_not_compared(runs, tmp_path):
    res = report([runs["run1"], runs["run_other"]], tmp_path / "ds")
    html = res["html"].read_text()
    assert "different data" in html
    cells = parse(res["html"])
    sort, text, _ = cells[("delta", "mIoU", "run_other/good")]
    assert sort == "" and text == ""  # no delta across datasets
    assert float(cells[("value", "mIoU", "run_other/good")][0]) == pytest.approx(
        json.loads((runs["run_other"] / "summary.json").read_text())["good"]["mIoU"])


def test_bad_input(runs, tmp_path):
    with pytest.raises(UserError, match="not a zeg-eval run folder"):
        report([tmp_path], tmp_path / "x")
    with pytest.raises(UserError, match="does not exist"):
        report([tmp_path / "nope"], tmp_path / "x")
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read the manifest"):
        report([bad], tmp_path / "x")
    with pytest.raises(UserError, match="--baseline 'nobody'"):
        report([runs["run1"]], tmp_path / "x", baseline="nobody")
    with pytest.raises(UserError, match="ambiguous"):
        report([runs["run1"], runs["run2"]], tmp_path / "x", baseline="good")
    # A run in progress: refused, or reported as partial on request.
    partial = tmp_path / "partial"
    shutil.copytree(runs["run1"], partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["status"] = "running"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="not complete.*--partial"):
        report([partial], tmp_path / "x")
    res = report([partial], tmp_path / "p", allow_partial=True, n_boot=0)
    assert "PARTIAL" in res["html"].read_text()


@pytest.mark.slow  # renders whole reports (matplotlib, gallery)
def test_gallery_crops_and_missing_sources(runs, tmp_path):
    res = report([runs["run1"], runs["run2"]], tmp_path / "g", baseline="coarse")
    html = res["html"].read_text()
    gallery = html[html.index('id="gallery"'):html.index('id="files"')]
    assert "Objects where the models disagree most" in gallery
    assert any(f"{c} in img" in gallery for c in ("car", "person", "sign"))
    assert "missed" in gallery and "found" in gallery
    assert gallery.count("data:image/png;base64,") >= 8
    assert "Worst images: coarse" in gallery
    # Without the dataset and the predictions the page still renders and says why.
    moved = tmp_path / "moved"
    shutil.copytree(runs["run1"], moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["dataset"]["root"] = str(tmp_path / "gone")
    for entry in manifest["models"].values():
        entry["spec"]["path"] = str(tmp_path / "gone_preds")
    manifest["models"]["good"]["spec"]["checkpoint"] = "/ckpt/good.pth"
    manifest["models"]["good"]["identities"]["clean"]["model"]["checkpoint_sha256"] = "ab12" * 16
    (moved / "manifest.json").write_text(json.dumps(manifest))
    html = report([moved], tmp_path / "g2")["html"].read_text()
    assert "not available" in html and "no pictures" in html and "no saved predictions" in html
    assert "/ckpt/good.pth" in html and "ab12ab12ab12ab12" in html  # the header shows checkpoint and hash
    # Predictions saved in the run folder (--save-predictions) are used even without the dataset.
    shutil.copytree(runs["preds"]["good"], moved / "predictions" / "good")
    html = report([moved], tmp_path / "g3")["html"].read_text()
    worst = html[html.index("Worst images: good"):html.index('id="files"')]
    assert worst.count('alt="good" src="data:image/png;base64,') == 3
    assert "no saved predictions" not in html


@pytest.mark.slow  # renders whole reports (matplotlib, gallery)
def test_command_line(runs, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli"
    args = parser.parse_args(["--compare", str(runs["run1"]), str(runs["run2"]), "--baseline", "coarse",
                              "--out", str(out), "--bootstrap", "50", "--gallery", "2"])
    assert command(args) == 0
    assert (out / "report.html").is_file() and (out / "summary.csv").is_file()
    assert "report:" in capsys.readouterr().out
    with pytest.raises(UserError):
        command(parser.parse_args([]))


def chrome(width: int, height: int):
    """Debian's Chromium driven by selenium through Debian's chromedriver (nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "apt-get install -y chromium chromium-driver (the browser test needs both)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def visible_rows(driver, table_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".filter(r => r.style.display !== 'none').map(r => r.getAttribute('data-name') || r.cells[0].textContent);",
        table_id)


@pytest.mark.slow
def test_page_in_headless_chromium(runs, tmp_path):
    from selenium.webdriver.common.by import By

    res = report([runs["run1"], runs["run2"]], tmp_path / "web", baseline="coarse")
    url = res["html"].resolve().as_uri()
    driver = chrome(1440, 900)
    try:
        driver.get(url)
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"  # the script ran
        assert not [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        # the first screen holds the answer: the headline's first delta lies within 900 px
        first = driver.find_element(By.CSS_SELECTOR, "[data-h-delta]")
        assert first.is_displayed() and first.rect["y"] < 900
        every = visible_rows(driver, "summary-table")
        assert "mIoU" in every and "mE_boundary_oU_FP" not in every  # parts folded
        total = len(driver.find_elements(By.CSS_SELECTOR, "#summary-table tbody tr"))
        # search narrows the rows to matching metrics
        driver.find_element(By.ID, "metric-search").send_keys("band")
        rows = visible_rows(driver, "summary-table")
        assert rows and len(rows) < len(every) and all("band" in r for r in rows)
        driver.find_element(By.ID, "metric-search").clear()
        driver.execute_script("document.getElementById('metric-search').dispatchEvent(new Event('input'))")
        assert visible_rows(driver, "summary-table") == every
        # significant only: the rows whose deltas are emphasised, sub-metrics included
        driver.find_element(By.ID, "sig-only").click()
        sig = visible_rows(driver, "summary-table")
        expected = {r["metric"] for r in res["data"]["rows"] if r["sig"]}
        assert set(sig) == expected and 0 < len(sig) < total
        driver.find_element(By.ID, "sig-only").click()
        # a family, then unfolding a metric's parts
        driver.execute_script("var s = document.getElementById('famfilter'); s.value = 'boundary';"
                              "s.dispatchEvent(new Event('change'));")
        boundary = visible_rows(driver, "summary-table")
        assert "boundary_IoU" in boundary and "mIoU" not in boundary
        driver.find_element(By.CSS_SELECTOR, 'button[data-fold="mE_boundary_oU"]').click()
        unfolded = visible_rows(driver, "summary-table")
        assert set(unfolded) - set(boundary) == {"mE_boundary_oU_FP", "mE_boundary_oU_FN", "mE_boundary_oU_renormed"}
        # the per-class table sorts by the gap (a delta column)
        head = driver.find_element(By.XPATH, "//table[@id='per-class-table']//th[starts-with(., 'Δ run1/good')]")
        head.click()
        gaps = driver.execute_script(
            "var t = document.getElementById('per-class-table'); var i = arguments[0].cellIndex;"
            "return Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[i].getAttribute('data-sort')));", head)
        assert gaps == sorted(gaps, reverse=True) and len(gaps) == len(CLASSES)
        # the object explorer: filters change the rows; a click shows the object's pictures and overlays
        from selenium.webdriver.support.ui import Select, WebDriverWait

        from harness.data.imageio import read_label_png

        def objects():
            return driver.execute_script("return Array.from(document.querySelectorAll('#explorer-table tbody tr'))"
                                         ".map(r => Array.from(r.cells).map(c => c.textContent))")

        every_object = objects()
        assert len(every_object) > 10
        Select(driver.find_element(By.ID, "ex-class")).select_by_visible_text(
            next(o.text for o in Select(driver.find_element(By.ID, "ex-class")).options if o.text.startswith("car (")))
        cars = objects()
        assert 0 < len(cars) < len(every_object) and {row[2] for row in cars} == {"car"}
        Select(driver.find_element(By.ID, "ex-hit-1")).select_by_value("0")   # coarse missed them
        missed = objects()
        assert len(missed) < len(cars) and all(row[8].startswith("missed") for row in missed)
        Select(driver.find_element(By.ID, "ex-hit-1")).select_by_value("")
        Select(driver.find_element(By.ID, "ex-sort")).select_by_value("iou-asc-1")
        ious = [float(row[8].split()[1]) for row in objects()]
        assert ious == sorted(ious)
        driver.find_element(By.CSS_SELECTOR, "#explorer-table tbody tr:not(.nopic)").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "ex-view").get_attribute("data-shown"))
        shown = driver.execute_script(
            "var X = JSON.parse(document.getElementById('explorer-data').textContent);"
            "var i = +document.getElementById('ex-view').getAttribute('data-shown');"
            "return [X.images[X.cols.image[i]], X.cols['class'][i]];")
        stem, cls = shown
        assert runs["data"].joinpath("labels", f"{stem}.png").is_file() and CLASSES[cls] == "car"
        gt = read_label_png(runs["data"] / "labels" / f"{stem}.png")
        for label, folder in (("coarse", runs["preds"]["coarse"]), ("blind", runs["preds"]["blind"])):
            pred = read_label_png(folder / f"{stem}.png")
            canvas = driver.find_element(By.CSS_SELECTOR, f'canvas[data-overlay="{label}"]')
            want = {"tp": (gt == cls) & (pred == cls), "fn": (gt == cls) & (pred != cls),
                    "fp": (gt != cls) & (pred == cls) & (gt != 255)}
            assert {k: int(canvas.get_attribute(f"data-{k}")) for k in want} == {k: int(v.sum()) for k, v in want.items()}
        legend = driver.find_element(By.ID, "ex-legend").text
        assert "TP" in legend and "FN" in legend and "car" in legend
        # print on A4 (190 mm of text width = 718 CSS px): every summary row is shown, none clipped
        driver.set_window_size(718 + (driver.execute_script("return window.outerWidth - window.innerWidth") or 0), 1000)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        printed = driver.execute_script(
            "var t = document.getElementById('summary-table');"
            "return [Array.from(t.tBodies[0].rows).filter(r => r.getBoundingClientRect().height > 0).length,"
            " t.getBoundingClientRect().right, window.innerWidth]")
        assert printed[0] == total and printed[1] <= printed[2] + 1, printed
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        # a phone: no horizontal page scroll (tables scroll inside their boxes)
        driver.set_window_size(390, 844)
        width = driver.execute_script("return window.innerWidth")
        assert width <= 390
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        wide = driver.execute_script(
            "return Array.from(document.querySelectorAll('body *')).filter(e => e.closest('.scroll') === null"
            " && e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className)")
        assert not wide, wide
    finally:
        driver.quit()


def test_single_model_run_with_one_family(runs, tmp_path):
    res = report([runs["run_std"]], tmp_path / "one")
    html = res["html"].read_text()
    assert "Families absent from every model: boundary, size, occlusion" in html
    assert "two or more models" in html and "Seen vs unseen classes" in html
    cells = parse(res["html"])
    assert not [k for k in cells if k[0] == "delta"]
    summary = json.loads((runs["run_std"] / "summary.json").read_text())["blind"]
    assert float(cells[("value", "hIoU", "blind")][0]) == pytest.approx(summary["hIoU"], rel=1e-12)


ODD_CLASSES = ["sky", "road", "$x^^2$ car", "<b>person</b>", "=1+1"]


def test_names_are_data_in_html_figures_and_csv(tmp_path):
    """Class names holding HTML, mathtext and spreadsheet formulas are shown as typed, never run."""
    data, preds = make_data(tmp_path / "odd", classes=CLASSES)
    (data / "dataset.yaml").write_text("name: odd\nclasses: " + json.dumps(ODD_CLASSES)
                                       + "\nunseen: " + json.dumps(ODD_CLASSES[-2:]) + "\n")
    (tmp_path / "p.yaml").write_text("name: odd\nfamilies:\n  standard: {}\n  size: {}\n")
    run_dir = tmp_path / "run$1"
    run_from_args(tmp_path / "p.yaml", data, [f"good={preds['good']}", f"blind={preds['blind']}"], run_dir,
                  workers=1)
    res = report([run_dir], tmp_path / "rep", n_boot=20, gallery_objects=0, gallery_worst=0)
    page = res["html"].read_text()
    assert "<b>person</b>" not in page and "&lt;b&gt;person&lt;/b&gt;" in page
    assert "run$1" in page
    raw = (tmp_path / "rep/per_class.csv").read_text()
    assert "'=1+1" in raw and ",=1+1" not in raw
    assert "$x^^2$ car" in raw  # not a formula: left as is
    per_class = pd.read_csv(tmp_path / "rep/per_class.csv")
    assert set(per_class["class"]) == {"sky", "road", "$x^^2$ car", "<b>person</b>", "'=1+1"}
    # numbers stay numbers (a negative delta is not a formula)
    long = pd.read_csv(tmp_path / "rep/summary_long.csv")
    assert long["delta"].dtype == np.float64 and (long["delta"] < 0).any()


def test_number_formats_follow_the_metric_unit():
    from harness.metrics.family import COUNT, PER_IMAGE, MetricInfo
    from harness.report import formats

    pct = MetricInfo("mIoU", "standard")
    count = MetricInfo("n_objects", "size", unit=COUNT, better=None, interval=False)
    rate = MetricInfo("fp_blobs_per_image", "size", unit=PER_IMAGE, better="lower")
    share = MetricInfo("miss_to_background", "miss_attribution", better=None, interval=True)
    constant = MetricInfo("mean_occlusion", "occlusion", better=None, interval=False)
    assert formats.value_text(-0.001, pct) == "0.00"          # never -0.00
    assert formats.value_text(12.345, pct) == "12.35" or formats.value_text(12.345, pct) == "12.34"
    assert formats.value_text(1234567.0, count) == "1,234,567"
    assert formats.value_text(0.12345, rate) == "0.123"
    assert formats.value_text(None, pct) == "absent" and formats.value_text(float("nan"), pct) == "n/a"
    assert formats.delta_text(0.004, pct) == "0.00" and formats.delta_text(-0.004, pct) == "0.00"  # never +/-0.00
    assert formats.delta_text(0.006, pct) == "+0.01" and formats.delta_text(-1.5, pct) == "-1.50"
    assert formats.rounds_to_zero(-0.004, pct) and not formats.rounds_to_zero(0.006, pct)
    assert formats.interval_text(-0.5, 0.25, pct, signed=True) == "[-0.50, +0.25]"
    assert formats.interval_text(float("nan"), 1.0, pct) == ""
    assert not formats.has_delta(count) and not formats.has_delta(constant)
    assert formats.has_delta(pct) and formats.has_delta(rate) and formats.has_delta(share)


class Marked(HTMLParser):
    """Every element carrying one of the given attributes: attribute value -> [(attrs, text)]."""

    def __init__(self, attr):
        super().__init__()
        self.attr, self.found, self._stack = attr, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._stack.append((tag, a, []))

    def handle_data(self, data):
        for _, _, text in self._stack:
            text.append(data)

    def handle_endtag(self, tag):
        while self._stack:
            t, a, text = self._stack.pop()
            if self.attr in a:
                self.found.append((a, "".join(text).strip()))
            if t == tag:
                break


def marked(html: str, attr: str) -> list:
    p = Marked(attr)
    p.feed(html)
    return p.found


def test_headline_panel_answers_first(runs, tmp_path):
    res = report([runs["run1"]], tmp_path / "h", gallery_objects=0, gallery_worst=0)
    html = res["html"].read_text()
    s = json.loads((runs["run1"] / "summary.json").read_text())
    # the panel comes before the full table and the provenance
    assert html.index('id="headline"') < html.index('id="summary"') < html.index('id="runs"')
    assert "<details><summary>1 run:" in html   # provenance folded
    values = {(a["data-h-metric"], a["data-h-model"]): (a["data-sort"], t) for a, t in marked(html, "data-h-metric")}
    shown = {m for m, _ in values}
    assert shown == {"object_recall@small", "mIoU_unseen", "hIoU", "boundary_IoU", "mIoU"}  # occ_gt50 has no object
    for (metric, model), (sort, text) in values.items():
        assert float(sort) == pytest.approx(s[model][metric], rel=1e-12)
        assert text == f"{s[model][metric]:.2f}"
    deltas = {a["data-h-delta"]: (a["data-sort"], t) for a, t in marked(html, "data-h-delta")}
    for metric, (sort, text) in deltas.items():
        d = s["coarse"][metric] - s["good"][metric]
        assert float(sort) == pytest.approx(d, rel=1e-12)
        assert text == (f"{d:+.2f}" if round(abs(d), 2) else "0.00")
    # what the numbers rest on: the bucket's objects (from the run's own n_objects@small)
    n_small = int(s["good"]["n_objects@small"])
    assert f"{n_small} objects" in html
    # the toy data has few unseen classes (2): that is flagged; a small-object bucket of n_small
    # objects is flagged only when n_small is under the threshold
    loose = report([runs["run1"]], tmp_path / "h1", gallery_objects=0, gallery_worst=0, n_boot=20,
                   min_objects=n_small)["html"].read_text()
    assert {a["data-small"] for a, _ in marked(loose, "data-small")} == {"mIoU_unseen", "hIoU"}
    strict = report([runs["run1"]], tmp_path / "h2", gallery_objects=0, gallery_worst=0, n_boot=20,
                    min_objects=n_small + 1)["html"].read_text()
    assert {a["data-small"] for a, _ in marked(strict, "data-small")} == {"mIoU_unseen", "hIoU", "object_recall@small"}
    assert f"only {n_small} objects" in strict


def test_summary_table_units_groups_and_definitions(runs, tmp_path):
    res = report([runs["run1"]], tmp_path / "t", gallery_objects=0, gallery_worst=0)
    html = res["html"].read_text()
    cells = parse(res["html"])
    # counts and data constants: a value, no delta
    for metric in ("n_images", "n_objects@small", "mean_occlusion"):
        assert cells[("value", metric, "coarse")][1] != ""
        assert cells[("delta", metric, "coarse")][:2] == ("", ""), metric
    assert cells[("delta", "mIoU", "coarse")][1].startswith(("+", "-"))
    # no signed zero anywhere in the value or delta cells
    assert not [k for k, v in cells.items() if v[1] in ("-0.00", "+0.00", "-0.000", "+0.000")]
    # sub-metrics fold under their metric, right after it
    rows = [(a["data-name"], a["data-parent"]) for a, _ in marked(html, "data-parent")]
    names = [n for n, _ in rows]
    parents = dict(rows)
    assert parents["mE_boundary_oU_FP"] == parents["mE_boundary_oU_renormed"] == "mE_boundary_oU"
    assert parents["object_recall_seen@occ_none"] == "object_recall@occ_none"
    assert parents["mIoU_unseen"] == "" and parents["mE_boundary_oU"] == ""
    i = names.index("mE_boundary_oU")
    assert set(names[i + 1:i + 4]) == {"mE_boundary_oU_FP", "mE_boundary_oU_FN", "mE_boundary_oU_renormed"}
    # hovering a metric shows its definition (the standard formula)
    tips = {a["data-sort"]: a["title"] for a, _ in marked(html, "title") if a.get("data-sort") in ("mIoU", "n_images")}
    assert "I_c / (P_c + L_c - I_c)" in tips["mIoU"] and "higher is better" in tips["mIoU"]
    assert "images evaluated" in tips["n_images"]
    # per class: delta = the run's per-class IoU difference; the interval contains it
    pc = pd.read_csv(runs["run1"] / "per_class.csv").set_index(["model", "class"])["IoU"]
    table = html[html.index('id="per-class-table"'):]
    table = table[:table.index("</table>")]
    for cls in CLASSES:
        row = table[table.rindex("<tr>", 0, table.index(f'data-sort="{cls}"')):]
        row = row[:row.index("</tr>")]
        tds = marked(row, "data-sort")
        nums = [a["data-sort"] for a, _ in tds]
        # class, split, pixels, good (the baseline: the first model), coarse, delta coarse
        assert float(nums[3]) == pytest.approx(pc[("good", cls)], rel=1e-12)
        assert float(nums[4]) == pytest.approx(pc[("coarse", cls)], rel=1e-12)
        assert float(nums[5]) == pytest.approx(pc[("coarse", cls)] - pc[("good", cls)], rel=1e-12)


def test_per_class_table_hides_classes_absent_from_the_data(runs, tmp_path):
    # run_other's classes are a..f; the generated labels use ids 0..4 only: f never occurs
    html = report([runs["run_other"]], tmp_path / "o", gallery_objects=0, gallery_worst=0)["html"].read_text()
    table = html[html.index('id="per-class-table"'):]
    table = table[:table.index("</table>")]
    assert all(f'data-sort="{c}"' in table for c in "abcde") and 'data-sort="f"' not in table
    assert "1 class without a ground-truth pixel left out" in html


@pytest.mark.slow  # renders whole reports (matplotlib at 300 dpi)
def test_figures_for_a_paper_and_the_difference_plot(runs, tmp_path):
    from PIL import Image

    from harness.report import plots

    res = report([runs["run1"], runs["run2"]], tmp_path / "f", baseline="coarse", gallery_objects=0, gallery_worst=0,
                 figure_files=True)
    html = res["html"].read_text()
    keys = {"differences", "size", "band", "occlusion", "seen_unseen", "errors", "small_heatmap"}
    for key in keys:
        for ext in ("svg", "pdf", "png"):
            path = tmp_path / "f/figures" / f"{key}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
            assert f'href="figures/{key}.{ext}"' in html
        assert Image.open(tmp_path / "f/figures" / f"{key}.png").info["dpi"] == pytest.approx((300, 300), abs=0.5)
    assert (tmp_path / "f/figures/differences.pdf").read_bytes().startswith(b"%PDF")
    # the difference plot: one row per bucket with its range and the baseline's n; the markers are
    # model - baseline of the run summaries
    s1 = json.loads((runs["run1"] / "summary.json").read_text())
    s2 = json.loads((runs["run2"] / "summary.json").read_text())
    data = res["data"]
    entries = data["entries"]
    with plots.style():
        fig = plots.differences(entries, data["base"], plots.colors([e.label for e in entries]))
        fig.fig.canvas.draw()
        ax_recall, ax_iou = fig.fig.axes[:2]
        labels = [t.get_text() for t in ax_recall.get_yticklabels()]
        assert f"small [0, 1,024)  n={int(s1['coarse']['n_objects@small'])}" in labels
        assert any(lab.startswith("occ_none ≤ 0  n=") for lab in labels)
        xs = {round(float(line.get_xdata()[0]), 9) for line in ax_recall.lines if len(line.get_xdata()) == 1}
        d = s2["blind"]["object_recall@small"] - s1["coarse"]["object_recall@small"]
        assert round(d, 9) in xs
        legend = fig.fig.legends[0] if fig.fig.legends else ax_iou.get_legend()
        assert legend.get_window_extent().x0 >= ax_iou.get_window_extent().x1  # outside the data
        import matplotlib.pyplot as plt

        plt.close(fig.fig)


def test_paper_tables_equal_summary_json(runs, tmp_path):
    from harness.report.export import latex_text, markdown_text

    metrics = ("mIoU", "hIoU", "object_recall@small", "n_objects@small")
    res = report([runs["run1"]], tmp_path / "x", gallery_objects=0, gallery_worst=0, export=("latex", "markdown"),
                 export_metrics=metrics)
    assert set(res["export"]) == {"latex", "markdown"}
    s = json.loads((runs["run1"] / "summary.json").read_text())
    long = pd.read_csv(tmp_path / "x/summary_long.csv").set_index(["model", "metric"])
    md = (tmp_path / "x/table.md").read_text().splitlines()
    tex = (tmp_path / "x/table.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "object\\_recall@small" in tex and "object_recall" not in tex   # names escaped
    header = next(i for i, line in enumerate(md) if line.startswith("| Model"))
    rows = {}
    for line in md[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(metrics, cells[1:]))
    assert set(rows) == {"good", "coarse"}
    for model, cells in rows.items():
        for metric in ("mIoU", "hIoU", "object_recall@small"):
            value, ci = cells[metric].split(" ", 1)
            assert value == f"{s[model][metric]:.2f}"          # the run's own number, as rounded on the page
            lo, hi = (float(x) for x in ci.strip("[]").split(", "))
            assert lo == round(long.loc[(model, metric), "ci_lo"], 2) and hi == round(long.loc[(model, metric), "ci_hi"], 2)
            assert f"{s[model][metric]:.2f} {{\\scriptsize {ci}}}" in tex
        assert cells["n_objects@small"] == f"{int(s[model]['n_objects@small'])}"   # a count: no interval
    delta_rows = [line for line in md if line.startswith("| coarse |")]
    assert len(delta_rows) == 2
    d = s["coarse"]["mIoU"] - s["good"]["mIoU"]
    assert delta_rows[1].split("|")[2].strip().startswith(f"{d:+.2f}")
    # names are data in both formats
    assert markdown_text("a_b|<i>x</i>") == "a\\_b\\|\\<i\\>x\\</i\\>"
    assert latex_text("50% $x$ & #1_") == "50\\% \\$x\\$ \\& \\#1\\_"
    with pytest.raises(UserError, match="--metrics: nope"):
        report([runs["run1"]], tmp_path / "y", n_boot=0, export=("latex",), export_metrics=("nope",))


@pytest.mark.slow  # runs baselines and renders the gallery
def test_gallery_rebuilds_baselines_and_inlines_photos_as_jpeg(tmp_path):
    import base64

    from harness.report.gallery import disagreement_objects

    data, preds = make_data(tmp_path / "b")
    (tmp_path / "p.yaml").write_text(
        "name: base\nfamilies:\n  standard: {}\n  size: {}\nmodels:\n  - {name: oracle, baseline: oracle}\n"
        "  - {name: drop_small, baseline: drop_small, max_area: 64}\n")
    run_dir, _ = run_from_args(tmp_path / "p.yaml", data, [], tmp_path / "run", workers=1)
    res = report([run_dir], tmp_path / "rep", baseline="oracle", gallery_objects=4, gallery_worst=1,
                 gallery_min_area=20)
    html = res["html"].read_text()
    gallery = html[html.index('id="gallery"'):html.index('id="files"')]
    assert "not available" not in gallery and "no saved predictions" not in gallery
    # the oracle's rebuilt prediction is the ground truth: the same picture, byte for byte
    objects = gallery[:gallery.index("Worst images")]
    panels = re.findall(r'alt="(ground truth|oracle|drop_small)" src="data:image/png;base64,([^"]+)"', objects)
    assert len(panels) >= 3 and len(panels) % 3 == 0
    for (g, gt), (o, oracle), (d, drop) in zip(panels[::3], panels[1::3], panels[2::3]):
        assert (g, o, d) == ("ground truth", "oracle", "drop_small")
        assert oracle == gt and drop != gt   # drop_small removed the small object shown
    # photos are JPEG, label maps PNG
    photo = re.search(r'alt="image" src="data:image/jpeg;base64,([^"]+)"', gallery)
    assert photo and base64.b64decode(photo.group(1))[:3] == b"\xff\xd8\xff"
    # objects under the minimum size are not shown
    _, models = load_runs([run_dir])
    entries = res["data"]["entries"]
    ranked = disagreement_objects(entries, 50, per_image=50, min_area=20)
    assert len(ranked) and (ranked["area"] >= 20).all()
    everything = disagreement_objects(entries, 50, per_image=50)
    assert (everything["area"] < 20).any()


def test_protocol_differences_between_runs_are_flagged(runs, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(runs["run1"], changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["protocol"]["families"]["size"]["hit_threshold"] = 0.7
    (changed / "manifest.json").write_text(json.dumps(manifest))
    html = report([runs["run1"], changed], tmp_path / "d", n_boot=0, gallery_objects=0,
                  gallery_worst=0)["html"].read_text()
    assert "compute family &#39;size&#39; with different settings (hit_threshold: 0.5 vs 0.7)" in html
    assert "family &#39;standard&#39; with different" not in html
    same = report([runs["run1"], runs["run2"]], tmp_path / "s", n_boot=0, gallery_objects=0,
                  gallery_worst=0)["html"].read_text()
    assert "with different settings" not in same


def test_compare_pairs_a_model_across_runs(runs, tmp_path):
    html = report([runs["run1"], runs["run2"]], tmp_path / "rr", baseline="coarse", gallery_objects=0,
                  gallery_worst=0)["html"].read_text()
    assert "run2/good vs run1/good" in html
    # the same predictions in both runs: every difference is 0 with a zero-width paired interval
    found = {a["data-rr"]: (a["data-sort"], t) for a, t in marked(html, "data-rr")}
    assert {k.split("|")[1] for k in found} == {"object_recall@small", "mIoU_unseen", "hIoU", "boundary_IoU", "mIoU"}
    assert all(k.startswith("run2/good|") and float(v[0]) == 0.0 and v[1] == "0.00" for k, v in found.items())
    assert "[0.00, 0.00]" in html[html.index('id="run-to-run"'):html.index('id="summary"')]
    single = report([runs["run1"]], tmp_path / "one", n_boot=0, gallery_objects=0, gallery_worst=0)
    assert 'id="run-to-run"' not in single["html"].read_text()
