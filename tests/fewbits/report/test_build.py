"""The report of a real tiny sweep: files exist, numbers equal the store, the HTML is self-contained and renders."""

from __future__ import annotations

import csv
import html as html_mod
import json
import re
import shutil
import subprocess

import pytest

from fewbits.flow.store import Store
from fewbits.report import data as rd
from fewbits.report.build import write_report
from fewbits.report.costs import COSTS


@pytest.fixture(scope="module")
def report(tiny_sweep, tmp_path_factory):
    root, points, records = tiny_sweep
    out = tmp_path_factory.mktemp("report")
    return root, write_report(root, out, budget=0.5), out


def test_every_file_is_written(report):
    root, rep, out = report
    for name in ("index.html", "results.csv", "results.json"):
        assert (out / name).stat().st_size > 0
    names = {f["name"] for f in rep["figures"]}
    # what the tiny sweep supports: width plot (2 families) and the trade-offs it measured
    assert {"error_vs_prop_width", "tradeoff_transistors", "tradeoff_energy_pj"} <= names
    for f in rep["figures"]:
        assert (out / f["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f["svg"]).read_text().lstrip().startswith("<?xml")


def test_numbers_equal_the_stored_results(report):
    root, rep, out = report
    store = Store(root)
    data = json.loads((out / "results.json").read_text())
    with open(out / "results.csv", newline="") as f:
        csv_rows = {r["key"]: r for r in csv.DictReader(f)}
    assert len(data["points"]) == len(store.points()) == len(csv_rows) == 3
    for row in data["points"]:
        rec = store.get_point(row["key"])
        assert row["status"] == rec["status"]
        if rec["status"] == "failed":
            assert row["reason"] == rec["reason"] and row.get("test_error") is None
            continue
        stage = lambda n: store.get_stage(rec["stages"][n]["stage"], rec["stages"][n]["key"])["result"]  # noqa: E731
        assert row["test_error"] == stage("train")["test_error"]
        assert row["valid_error"] == stage("train")["valid_error"]
        assert row["transistors"] == stage("synth.cmos")["per_pe"]["transistors"]
        assert row["mult_transistors"] == stage("synth.multiplier.cmos")["figures"]["transistors"]
        assert row["energy_pj"] == stage("power")["energy_per_mac_pj"]
        assert row["cosim_macs"] == stage("cosim")["macs_checked"]
        c = csv_rows[row["key"]]
        for k in ("test_error", "transistors", "energy_pj"):
            assert float(c[k]) == row[k], k
        for k, rel in row["links"].items():  # every artifact link resolves to a file in the store
            assert (root / rel).exists(), (k, rel)


def test_failed_point_is_shown_as_failed_and_never_as_a_result(report):
    root, rep, out = report
    html = (out / "index.html").read_text()
    failed = [r for r in rep["data"]["rows"] if r["status"] == "failed"]
    assert len(failed) == 1
    assert "Failed points" in html and "no-such-dir" in html
    for g in rep["data"]["groups"]:
        for keys in g["pareto"].values():
            assert failed[0]["key"] not in keys


def test_pareto_front_is_not_dominated_and_dominates_the_rest(report):
    rows = report[1]["data"]["rows"]
    for c in COSTS:
        cost, v = c.field, (lambda r, c=c: c.rank(r[c.field]))  # a clock: higher is better
        res = [r for r in rows if rd.is_result(r) and isinstance(r.get(cost), (int, float))]
        front = rd.pareto(rows, cost)
        keys = {r["key"] for r in front}
        for r in res:
            dominated = any(v(o) <= v(r) and o["test_error"] <= r["test_error"] and
                            (v(o) < v(r) or o["test_error"] < r["test_error"]) for o in res)
            assert (r["key"] in keys) == (not dominated), (cost, r["label"])


@pytest.mark.parametrize("budget", [0.0, 0.5, 100.0])
def test_recommendation_is_the_cheapest_within_budget(report, budget):
    rows = [r for r in report[1]["data"]["rows"] if rd.is_result(r)]
    rec = rd.recommend(rows, budget)
    ref = min(r["test_error"] for r in rows)  # no fp32 point in the tiny sweep: relative to the best
    ok = [r for r in rows if r["test_error"] <= ref + budget]
    assert rec["row"][rec["metric"]] == min(r[rec["metric"]] for r in ok)
    assert rec["row"]["test_error"] <= ref + budget
    assert "no fp32 point" in rec["note"]


def test_index_html_is_self_contained(report):
    root, rep, out = report
    html = (out / "index.html").read_text()
    assert html.count("<svg") == len(rep["figures"]) >= 3
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html) + re.findall(r"url\(([^)]+)\)", html)
    assert not [r for r in refs if re.match(r"^(https?:)?//", r)], "network fetch in index.html"
    assert "<script" not in html and "<link" not in html and "<img" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids across inline SVGs"


def test_paper_numbers_are_listed(report):
    html = (report[2] / "index.html").read_text()
    for v in ("1.05", "1.10", "1.39", "1.28"):
        assert v in html


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (Debian: apt-get install chromium)")
def test_headless_chromium_renders_the_plots(report, tmp_path):
    """Screenshot index.html; the plots' Pareto-front orange appears only if the inline SVGs rendered."""
    import numpy as np
    from matplotlib import image

    out = report[2]
    shots = {}
    for name, html in (("page", (out / "index.html").read_text()),
                       ("no-svg", re.sub(r"<svg.*?</svg>", "", (out / "index.html").read_text(), flags=re.S))):
        page = tmp_path / f"{name}.html"
        page.write_text(html)
        png = tmp_path / f"{name}.png"
        subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={png}", "--window-size=1280,2400", page.as_uri()],
                       capture_output=True, timeout=120, check=False)
        assert png.is_file(), f"chromium wrote no screenshot for {name}"
        px = (image.imread(png)[..., :3] * 255).round().astype(int)
        orange = np.abs(px - np.array([0xFF, 0x7F, 0x0E])).max(axis=-1) <= 24
        shots[name] = int(orange.sum())
    assert shots["page"] > 200, shots  # the Pareto staircase and markers are drawn
    assert shots["no-svg"] == 0, shots  # and nothing else on the page is that orange


def test_summary_csv_has_one_row_per_configuration_equal_to_the_stored_runs(two_seed_sweep, tmp_path):
    from fewbits.report import stats
    from fewbits.training.datasets import load

    root, points, records = two_seed_sweep
    rep = write_report(root, tmp_path / "report", budget=0.5)
    store = Store(root)
    with open(tmp_path / "report" / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    need = {"config", "family", "prop", "update", "acc", "n_seeds", "test_error_mean", "test_error_std",
            "test_error_lo", "test_error_hi", "interval", "transistors", "energy_pj"}
    assert need <= set(table[0]) and len(table) == 2
    with open(tmp_path / "report" / "results.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4  # results.csv: still one row per run
    for row in table:
        mine = [r for r in records if r["label"] == row["config"]]
        assert len(mine) == 2 and {r["config"] for r in runs if r["key"] in {m["key"] for m in mine}} == {row["config"]}
        train = [store.get_stage("train", r["stages"]["train"]["key"])["result"] for r in mine]
        errs = sorted((p["seed"], t["test_error"]) for t, p in zip(train, [points[records.index(r)] for r in mine]))
        iv = stats.interval([e for _, e in errs])
        assert int(row["n_seeds"]) == 2 and row["seeds"] == "0 1" and row["interval"] == stats.T_OVER_SEEDS
        assert float(row["test_error_mean"]) == iv.mean == (errs[0][1] + errs[1][1]) / 2
        assert (float(row["test_error_std"]), float(row["test_error_lo"]), float(row["test_error_hi"])) == \
            (iv.std, iv.lo, iv.hi)
        synth = store.get_stage("synth", mine[0]["stages"]["synth.cmos"]["key"])["result"]
        power = store.get_stage("power", mine[0]["stages"]["power"]["key"])["result"]
        assert float(row["transistors"]) == synth["per_pe"]["transistors"]
        assert float(row["energy_pj"]) == power["energy_per_mac_pj"]
        assert {t["test_examples"] for t in train} == {len(load("digits").test.y)}  # the Wilson interval's n
    html = (tmp_path / "report" / "index.html").read_text()
    assert "Configurations (seeds as replicates)" in html and stats.T_OVER_SEEDS in html
    assert any("2 seeds" in line for line in rep["summary"])


# appended to a copy of index.html: what the browser loaded, written into the DOM that --dump-dom prints
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}));
  const svgImages = [...document.querySelectorAll('svg image')].map(i => i.getAttribute('href') || '');
  const fetched = performance.getEntriesByType('resource').map(e => e.name);
  const pre = document.createElement('pre'); pre.id = 'fewbits-probe';
  pre.textContent = JSON.stringify({imgs, svgImages, fetched, svgs: document.querySelectorAll('svg').length});
  document.body.appendChild(pre);
});
</script>"""


def _load(chromium: str, page, netlog) -> str:
    """Load ``page`` in headless Chromium (every host unresolvable, its requests logged): the DOM after load."""
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                        "--host-resolver-rules=MAP * ~NOTFOUND", f"--log-net-log={netlog}", "--dump-dom",
                        page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    return r.stdout


def _requested(netlog) -> set[str]:
    """scheme://host/path of every network request in a Chromium net log."""
    urls = re.findall(r'"url":"([^"]+)"', netlog.read_text()) if netlog.is_file() else []
    return {u.split("?")[0] for u in urls}


def probe_page(html: str, where, chromium: str, base) -> dict:
    """Load ``html`` as if it stood in folder ``base``: its images, and the network requests it made
    beyond those the browser makes for an empty page (its own background traffic)."""
    page, blank = where / "probe.html", where / "blank.html"
    page.write_text(html.replace("<head>", f"<head><base href='{base.as_uri()}/'>", 1)
                    .replace("</body>", _PROBE + "</body>"))
    blank.write_text("<!DOCTYPE html><html><body><p>blank</p></body></html>")
    dom = _load(chromium, page, where / "page.netlog.json")
    _load(chromium, blank, where / "blank.netlog.json")
    m = re.search(r'<pre id="fewbits-probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run"
    seen = json.loads(html_mod.unescape(m.group(1)))
    seen["network"] = sorted(_requested(where / "page.netlog.json") - _requested(where / "blank.netlog.json"))
    return seen


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (Debian: apt-get install chromium)")
def test_headless_chromium_finds_no_broken_image_and_no_fetch(report, tmp_path):
    """The page as a browser loads it: every image loads, nothing is fetched, every figure link exists."""
    out = report[2]
    html = (out / "index.html").read_text()
    seen = probe_page(html, tmp_path, _chromium(), out)
    assert seen["svgs"] == len(report[1]["figures"]) >= 3
    assert [i for i in seen["imgs"] if not i["ok"]] == [] and seen["svgImages"] == []
    assert seen["fetched"] == [] and seen["network"] == [], "index.html fetched something"
    for f in report[1]["figures"]:  # the PNG/SVG each figure links to, next to the page
        for name in (f["png"], f["svg"]):
            assert f"href='{name}'" in html and (out / name).stat().st_size > 0
    png = tmp_path / "index.png"  # kept in the test's artifacts
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", "--window-size=1280,3000", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_run_with_keep_float_is_stated_in_results_and_page(tmp_path):
    """A sweep over a model file whose nn.RNN is kept in float: results.csv and the page say so."""
    from fewbits.flow.config import load_sweep
    from fewbits.flow.engine import run_sweep

    from ..flow.test_config import RNN_MODEL

    (tmp_path / "m.py").write_text(RNN_MODEL)
    f = tmp_path / "sweep.toml"
    f.write_text('datasets = ["digits"]\nnetworks = ["m.py:rnn"]\nepochs = 1\nseeds = [4]\n'
                 '[train]\nlimit_train = 200\nkeep_float = ["rnn"]\n[cosim]\nenabled = false\n'
                 '[synth]\ntargets = []\n[power]\nenabled = false\n[[grid]]\nfamily = "fixed"\nwidths = [12]\n'
                 'int_bits = [3]\n')
    recs = run_sweep(load_sweep(f).points, tmp_path / "res", workers=1, progress=False)
    assert recs[0]["stages"]["train"]["status"] == "ok", recs[0]
    write_report(tmp_path / "res", tmp_path / "rep", budget=0.5)
    rows = list(csv.DictReader((tmp_path / "rep" / "results.csv").open()))
    assert [r["keep_float"] for r in rows] == ["rnn"]
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Kept in float, outside the MAC contract (keep_float): m.py:rnn: rnn." in page


# ---------------------------------------------------------------- sky130 axes from a real sweep

def test_sky130_sweep_builds_one_library_and_reports_its_axes(sky130_sweep, tmp_path):
    root, points, records = sky130_sweep
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("reason") for r in records]
    store = Store(root)
    keys = {r["stages"]["tech.sky130"]["key"] for r in records}
    assert len(keys) == 1 and len(list((root / "stages" / "tech").glob("*.json"))) == 1   # built once, shared
    rep = write_report(root, tmp_path / "rep", budget=0.5, cost="area_um2")
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    with open(tmp_path / "rep" / "results.csv", newline="") as f:
        csv_rows = {r["key"]: r for r in csv.DictReader(f)}
    with open(tmp_path / "rep" / "summary.csv", newline="") as f:
        summ = list(csv.DictReader(f))
    for row, rec in zip(sorted(data["points"], key=lambda r: r["key"]), sorted(records, key=lambda r: r["key"])):
        stage = lambda n: store.get_stage(rec["stages"][n]["stage"], rec["stages"][n]["key"])["result"]  # noqa: E731
        syn, pw = stage("synth.sky130"), stage("power.sky130")
        assert row["area_um2"] == syn["per_pe"]["area"] > 0      # µm² per MAC unit (2 PEs in the array)
        assert row["area_um2"] == syn["figures"]["area_um2"] / 2
        assert row["fmax_mhz"] == syn["figures"]["fmax_mhz"] > 0 and row["delay_ps"] == syn["figures"]["delay_ps"]
        assert row["energy_sky130_pj"] == pw["energy_per_mac_pj"] > 0
        assert pw["clock_mhz"] == row["fmax_mhz"]                # power at the design's own maximum clock
        assert row["sky130_model"].startswith("sky130_fd_sc_hd tt 1.8V 25C, characterized by fewbits")
        for k in ("area_um2", "fmax_mhz", "energy_sky130_pj"):
            assert float(csv_rows[row["key"]][k]) == row[k]
    assert {float(s["area_um2"]) for s in summ} == {r["area_um2"] for r in data["points"]}
    names = {f["name"] for f in rep["figures"]}
    assert {"tradeoff_area_um2", "tradeoff_energy_sky130_pj", "tradeoff_fmax_mhz", "area_um2_vs_width"} <= names
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "sky130 area per MAC unit (µm²)" in html and "sky130_fd_sc_hd tt 1.8V 25C, characterized by fewbits" in html
    assert rep["summary"][0].startswith("cheapest by sky130 area")
