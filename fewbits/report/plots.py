"""The report's figures (matplotlib, Agg): each written as PNG and SVG and returned as inline SVG.

Why inline SVG: ``index.html`` must be one self-contained file (no network
fetches, no side files needed to see it); element ids are prefixed per figure so
several SVGs can live in one page.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from fewbits.report.costs import COSTS
from fewbits.report.data import PAPER, PAPER_DATASET, is_result, pareto

COLORS = {"fp32": "#444444", "float": "#1f77b4", "fixed": "#d62728", "dfixed": "#2ca02c"}
NAMES = {"fp32": "fp32", "float": "floating point", "fixed": "fixed point", "dfixed": "dynamic fixed point"}
MARKERS = {"fp32": "*", "float": "s", "fixed": "o", "dfixed": "^"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "fewbits", "figure.dpi": 100, "font.size": 9})
    return plt


def _save(fig, out_dir: Path, name: str) -> dict:
    """Write ``name``.png and ``name``.svg; return the paths and the inline SVG text."""
    fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    (out_dir / f"{name}.svg").write_text(svg)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"name": name, "png": f"{name}.png", "svg": f"{name}.svg", "inline": inline_svg(svg, name)}


def inline_svg(svg: str, prefix: str) -> str:
    """The <svg> element alone (no XML prolog or DTD), its ids made unique with ``prefix``."""
    svg = svg[svg.index("<svg"):]
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    for i in sorted(ids, key=len, reverse=True):
        svg = svg.replace(f'id="{i}"', f'id="{prefix}-{i}"').replace(f'#{i}"', f'#{prefix}-{i}"') \
                 .replace(f"#{i})", f"#{prefix}-{i})")
    return svg


def _log_axis(ax, which: str, values) -> None:
    """A log axis labelled in plain numbers (minor ticks labelled too when the data spans under a decade)."""
    import math

    from matplotlib.ticker import FuncFormatter, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:g}")
    axis.set_major_formatter(plain)
    vals = [v for v in values if v and v > 0]
    narrow = vals and math.log10(max(vals) / min(vals)) < 1.0
    axis.set_minor_formatter(plain if narrow else NullFormatter())


def _yerr(pts):
    """Asymmetric error bars from each row's interval (0 where a row has none)."""
    lo = [max(0.0, r["test_error"] - r["test_error_lo"]) if _has_iv(r) else 0.0 for r in pts]
    hi = [max(0.0, r["test_error_hi"] - r["test_error"]) if _has_iv(r) else 0.0 for r in pts]
    return [lo, hi]


def _has_iv(r) -> bool:
    lo, hi = r.get("test_error_lo"), r.get("test_error_hi")
    return isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo == lo and hi == hi


def error_top(rows) -> float | None:
    """The top of the error axis: the region that matters around fp32, not a single 89 % point.

    Up to 2.5x fp32's error and at least 3 points above its interval; without fp32, 1.5x the
    median error.  Points above are drawn at the edge with their value written.
    """
    errs = sorted(r["test_error"] for r in rows)
    if not errs:
        return None
    base = [r for r in rows if r["family"] == "fp32"]
    if base:
        b = base[0]
        top = max(2.5 * b["test_error"], (b.get("test_error_hi") if _has_iv(b) else b["test_error"]) + 3.0)
    else:
        top = 1.5 * errs[len(errs) // 2]
    return top if errs[-1] > top else None


def _clip(ax, rows, top) -> None:
    """Draw the rows above ``top`` at the edge, each labelled with its value."""
    if top is None:
        return
    ax.set_ylim(bottom=0, top=top * 1.06)
    for r in rows:
        if r["test_error"] > top:
            ax.scatter([r["_x"]], [top], marker="^", s=40, color=COLORS[r["family"]], zorder=4, clip_on=False)
            ax.annotate(f"{r['test_error']:.1f}%", (r["_x"], top), fontsize=6, xytext=(3, -9),
                        textcoords="offset points", color=COLORS[r["family"]])


def _fp32_band(ax, base, suffix="") -> None:
    b = base[0]
    ax.axhline(b["test_error"], color=COLORS["fp32"], ls="--", lw=1, label=f"fp32 {b['test_error']:.2f}%{suffix}")
    if _has_iv(b):
        ax.axhspan(b["test_error_lo"], b["test_error_hi"], color=COLORS["fp32"], alpha=0.12, lw=0,
                   label=f"fp32 95 % interval{suffix}")


def _legend(ax) -> None:
    """Beside the axes, never over the data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _groups(rows):
    g = {}
    for r in rows:
        g.setdefault((r["dataset"], r["net"], r["epochs"]), []).append(r)
    return g


def _suffix(key, many):
    return f" [{key[0]}, {key[1]}]" if many else ""


def _line_groups(rows, x, other):
    """Rows of one family split by the knobs that are not on the x axis: {label: sorted rows}."""
    out = {}
    for r in rows:
        k = tuple((o, r.get(o)) for o in other if r.get(o) is not None)
        out.setdefault(k, []).append(r)
    return {k: sorted(v, key=lambda r: r[x]) for k, v in out.items()}


def _knob_label(k):
    names = {"update_delta": "update +", "prop_bits": "prop ", "int_bits": "int bits ", "max_overflow": "max ovf "}
    return ", ".join(f"{names.get(a, a)}{b:g}" if isinstance(b, float) else f"{names.get(a, a)}{b}" for a, b in k)


def mean_band(ax, pts, x, color, marker, label, alpha=1.0) -> None:
    """One curve over seeds: the mean test error of each configuration as a line, its 95 % interval
    (the row's ``test_error_lo``/``test_error_hi``, from ``fewbits.report.stats``: Student t over
    seeds, or with one seed the Wilson interval) as a shaded band.  A configuration without an
    interval leaves a gap in the band, never a band of zero width that looks certain; a point with
    an interval but no neighbour with one (nothing to draw a band between) gets an error bar."""
    xs = [r[x] for r in pts]
    ys = [r["test_error"] for r in pts]
    if len(pts) == 1:
        ax.errorbar(xs, ys, yerr=_yerr(pts), marker=marker, color=color, label=label, capsize=2, elinewidth=0.8,
                    alpha=alpha)
        return
    ax.plot(xs, ys, marker=marker, color=color, label=label, alpha=alpha, zorder=3)
    nan = float("nan")
    lo = [r["test_error_lo"] if _has_iv(r) else nan for r in pts]
    hi = [r["test_error_hi"] if _has_iv(r) else nan for r in pts]
    if any(v == v for v in lo):
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, lw=0, zorder=2)
    ok = [v == v for v in lo]
    alone = [r for i, r in enumerate(pts)
             if ok[i] and not (i > 0 and ok[i - 1]) and not (i + 1 < len(pts) and ok[i + 1])]
    if alone:
        ax.errorbar([r[x] for r in alone], [r["test_error"] for r in alone], yerr=_yerr(alone), fmt="none",
                    color=color, capsize=2, elinewidth=0.8, alpha=alpha)


def draw_error_vs(ax, rows, x, families, other, paper=False) -> list[dict]:
    """The curves of ``error_vs`` on ``ax`` (mean lines with their 95 % bands); returns the rows drawn."""
    res = [dict(r, update_delta=r["update_bits"] - r["prop_bits"]) for r in rows if is_result(r)]
    fam_rows = [r for r in res if r["family"] in families and r.get(x) is not None]
    groups = _groups(res)
    many = len(groups) > 1
    for gk, grs in groups.items():
        for fam in families:
            fr = [r for r in grs if r["family"] == fam and r.get(x) is not None]
            lines = _line_groups(fr, x, other)
            for k, pts in lines.items():
                lab = NAMES[fam] + (f" ({_knob_label(k)})" if len(lines) > 1 and k else "") + _suffix(gk, many)
                mean_band(ax, pts, x, COLORS[fam], MARKERS[fam], lab, alpha=1.0 if len(lines) == 1 else 0.85)
        base = [r for r in grs if r["family"] == "fp32"]
        if base:
            _fp32_band(ax, base, _suffix(gk, many))
        if paper and gk[0] == PAPER_DATASET:
            for p in PAPER:
                if p["family"] in families and p["family"] != "fp32":
                    ax.scatter([p["prop_width"]], [p["test_error"]],
                               marker="x", s=60, color=COLORS[p["family"]], label=f"paper: {p['format']}")
    _clip(ax, [dict(r, _x=r[x]) for r in fam_rows], error_top(res))
    return fam_rows


def error_vs(rows, out_dir, name, x, xlabel, families, other, title, logx=False, paper=False) -> dict | None:
    """Test error against one knob, one curve per family and combination of the other knobs: the mean
    over seeds as a line, its 95 % interval as a shaded band (``mean_band``)."""
    res = [r for r in rows if is_result(r)]
    fam_rows = [r for r in res if r["family"] in families and r.get(x) is not None]
    if len({r[x] for r in fam_rows}) < 2 and not (fam_rows and paper):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    draw_error_vs(ax, rows, x, families, other, paper)
    if logx:
        _log_axis(ax, "x", [r[x] for r in fam_rows])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test error (%): mean over seeds, 95 % interval shaded")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, out_dir, name)


def tradeoff(rows, out_dir, cost, label, source="") -> dict | None:
    """Test error against a cost, every family, the Pareto front drawn (per dataset/net group)."""
    res = [r for r in rows if is_result(r) and isinstance(r.get(cost), (int, float))]
    if not res:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    groups = _groups(res)
    many = len(groups) > 1
    for gk, grs in groups.items():
        for fam in ("fp32", "float", "fixed", "dfixed"):
            fr = [r for r in grs if r["family"] == fam]
            if fr:
                ax.errorbar([r[cost] for r in fr], [r["test_error"] for r in fr], yerr=_yerr(fr), fmt=MARKERS[fam],
                            color=COLORS[fam], ms=8 if fam == "fp32" else 6, capsize=2, elinewidth=0.8,
                            label=NAMES[fam] + _suffix(gk, many), zorder=3)
        base = [r for r in grs if r["family"] == "fp32"]
        if base:
            _fp32_band(ax, base, _suffix(gk, many))
        front = pareto(grs, cost)
        if front:
            xs, ys = [front[0][cost]], [front[0]["test_error"]]
            for a, b in zip(front, front[1:]):  # staircase: cheaper points dominate to the right
                xs += [b[cost], b[cost]]
                ys += [a["test_error"], b["test_error"]]
            ax.plot(xs, ys, color="#ff7f0e", lw=1.5, zorder=2, label="Pareto front of the means" + _suffix(gk, many))
            if all(_has_iv(r) for r in front):  # the front's uncertainty: its points' intervals as a band
                ax.fill_between(xs, [lo for lo, _ in _band(front, cost, xs)], [hi for _, hi in _band(front, cost, xs)],
                                color="#ff7f0e", alpha=0.15, lw=0, step=None, zorder=1,
                                label="front, 95 % intervals" + _suffix(gk, many))
            for r in front:
                ax.annotate(r["label"] or r["prop"], (r[cost], r["test_error"]), fontsize=6,
                            xytext=(4, 4), textcoords="offset points")
    _log_axis(ax, "x", [r[cost] for r in res])
    _clip(ax, [dict(r, _x=r[cost]) for r in res], error_top(res))
    ax.set_xlabel(label + " (log)" + (f"\n{source}" if source else ""), fontsize=8 if source else None)
    ax.set_ylabel("test error (%), mean and 95 % interval")
    ax.set_title(f"test error vs {label.split(' (')[0]}")
    ax.grid(alpha=0.3, which="both")
    _legend(ax)
    return _save(fig, out_dir, f"tradeoff_{cost}")


def _band(front, cost, xs):
    """The interval of the front's point in force at each staircase x (the cheaper point holds until the next)."""
    out = []
    for x in xs:
        r = max((p for p in front if p[cost] <= x), key=lambda p: p[cost])
        out.append((r["test_error_lo"], r["test_error_hi"]))
    return out


def cost_vs_width(rows, out_dir, cost, label, source="") -> dict | None:
    res = [r for r in rows if is_result(r) and isinstance(r.get(cost), (int, float))]
    if len(res) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for fam in ("fp32", "float", "fixed", "dfixed"):
        fr = sorted({(r["prop_bits"], r[cost]) for r in res if r["family"] == fam})
        if fr:
            ax.plot([a for a, _ in fr], [b for _, b in fr], marker=MARKERS[fam], color=COLORS[fam], label=NAMES[fam])
    _log_axis(ax, "y", [r[cost] for r in res])
    ax.set_xlabel("propagation width (bits, with sign)" + (f"\n{source}" if source else ""), fontsize=8 if source else None)
    ax.set_ylabel(label)
    ax.set_title(f"{label.split(' (')[0]} vs width")
    ax.grid(alpha=0.3, which="both")
    _legend(ax)
    return _save(fig, out_dir, f"{cost}_vs_width")


def all_figures(rows, out_dir: Path) -> list[dict]:
    """Every figure the data supports, in the order the report shows them."""
    figs = [
        error_vs(rows, out_dir, "error_vs_prop_width", "prop_bits", "propagation width (bits, with sign)",
                 ("float", "fixed", "dfixed"), ("update_delta", "int_bits", "max_overflow"),
                 "test error vs propagation width (the paper's Figures 1-3)", paper=True),
        error_vs(rows, out_dir, "error_vs_update_width", "update_bits", "update width (bits, with sign)",
                 ("float", "fixed", "dfixed"), ("prop_bits", "int_bits", "max_overflow"),
                 "test error vs parameter-update width"),
        error_vs(rows, out_dir, "error_vs_radix", "int_bits", "radix point position (integer bits above the sign)",
                 ("fixed",), ("prop_bits",), "fixed point: test error vs radix position"),
        error_vs(rows, out_dir, "error_vs_max_overflow", "max_overflow", "maximum overflow rate (log)",
                 ("dfixed",), ("prop_bits", "update_delta"), "dynamic fixed point: test error vs max overflow rate",
                 logx=True),
    ]
    for c in COSTS:   # each axis labelled with the model or tool that produced it
        figs.append(tradeoff(rows, out_dir, c.field, c.label, c.source))
    for c in COSTS:
        figs.append(cost_vs_width(rows, out_dir, c.field, c.label, c.source))
    return [f for f in figs if f is not None]
