"""report.plots: the error-versus-knob curves are the means over seeds with the stats module's intervals as bands."""

from __future__ import annotations

import numpy as np
import pytest

from fewbits.report import plots, stats
from fewbits.report.data import configurations

N_TEST = 397
# test errors (%) by seed: dfixed over three seeds, fixed over one seed (its band is the Wilson interval)
DFIXED = {6: [9.07, 7.30, 8.56], 8: [5.29, 4.79, 6.05], 10: [4.53, 4.28, 5.04]}
FIXED = {8: [11.84], 12: [6.55], 16: [5.79]}
FP32 = [4.79, 5.04, 4.28]


def run(family, width, seed, err, prop=None):
    prop = prop or ("fp32" if family == "fp32" else f"{family}:{width}" if family == "dfixed" else f"fixed:{width}:4")
    return {"key": f"{prop}-{seed}", "status": "ok", "dataset": "digits", "net": "mlp-small", "epochs": 12,
            "family": family, "prop": prop, "update": prop, "accumulator": "exact", "int_bits": None,
            "max_overflow": None, "rows": 1, "cols": 1, "k_max": 128, "seed": seed, "test_error": err,
            "test_examples": N_TEST, "prop_bits": width, "update_bits": width}


def runs():
    rows = [run("fp32", 32, s, e) for s, e in enumerate(FP32)]
    rows += [run("dfixed", w, s, e) for w, es in DFIXED.items() for s, e in enumerate(es)]
    rows += [run("fixed", w, s, e) for w, es in FIXED.items() for s, e in enumerate(es)]
    return rows


@pytest.fixture
def ax():
    plt = plots._plt()
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _band(ax, color):
    """{x: (lo, hi)} of the shaded band drawn in ``color`` (a fill_between polygon)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    polys = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_paths()
             and np.allclose(c.get_facecolor()[0][:3], to_rgba(color)[:3])]
    assert len(polys) == 1, polys
    out = {}
    for path in polys[0].get_paths():
        for x, y in path.vertices:
            out.setdefault(float(x), set()).add(float(y))
    return {x: (min(ys), max(ys)) for x, ys in out.items()}


def _line(ax, color):
    from matplotlib.colors import to_hex

    lines = [ln for ln in ax.lines if to_hex(ln.get_color()) == color and len(ln.get_xdata()) > 1]
    assert len(lines) == 1
    return dict(zip(map(float, lines[0].get_xdata()), map(float, lines[0].get_ydata())))


def test_band_edges_are_the_student_t_intervals_over_seeds(ax):
    plots.draw_error_vs(ax, configurations(runs()), "prop_bits", ("dfixed",), ())
    band, line = _band(ax, plots.COLORS["dfixed"]), _line(ax, plots.COLORS["dfixed"])
    assert set(band) == set(line) == {6.0, 8.0, 10.0}
    for w, errs in DFIXED.items():
        iv = stats.interval(errs)
        assert iv.method == stats.T_OVER_SEEDS
        assert band[w] == (iv.lo, iv.hi)
        assert line[w] == iv.mean


def test_one_seed_band_is_the_wilson_interval_of_the_test_set(ax):
    plots.draw_error_vs(ax, configurations(runs()), "prop_bits", ("fixed",), ())
    band = _band(ax, plots.COLORS["fixed"])
    for w, (e,) in FIXED.items():
        assert band[w] == stats.wilson(e, N_TEST)
        assert band[w] == (stats.interval([e], N_TEST).lo, stats.interval([e], N_TEST).hi)


def test_fp32_reference_band_is_its_interval(ax):
    plots.draw_error_vs(ax, configurations(runs()), "prop_bits", ("dfixed",), ())
    iv = stats.interval(FP32)
    spans = [(p.get_y(), p.get_y() + p.get_height()) for p in ax.patches]
    assert spans == [(iv.lo, iv.hi)]


def test_a_configuration_without_an_interval_leaves_a_gap_not_a_zero_width_band(ax):
    confs = configurations(runs())
    for c in confs:
        if c["family"] == "dfixed" and c["prop_bits"] == 8:
            c["test_error_lo"] = c["test_error_hi"] = float("nan")
    plots.draw_error_vs(ax, confs, "prop_bits", ("dfixed",), ())
    band = _band(ax, plots.COLORS["dfixed"])
    assert 8.0 not in band and {6.0, 10.0} <= set(band)
    # the points either side stand alone: each gets an error bar (a band of one x has no width to see)
    bars = {float(seg[0][0]): (float(seg[0][1]), float(seg[1][1]))
            for c in ax.collections if type(c).__name__ == "LineCollection" for seg in c.get_segments()}
    for w in (6, 10):
        iv = stats.interval(DFIXED[w])
        assert bars[w] == pytest.approx((iv.lo, iv.hi), abs=1e-12)


def test_error_vs_writes_png_and_svg_with_a_band(tmp_path):
    f = plots.error_vs(configurations(runs()), tmp_path, "e", "prop_bits", "width", ("fixed", "dfixed"), (), "t")
    assert (tmp_path / "e.png").stat().st_size > 0 and (tmp_path / "e.svg").stat().st_size > 0
    assert f["inline"].count("<path") > 4 and "opacity: 0.18" in f["inline"]
