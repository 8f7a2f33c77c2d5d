"""``fewbits report``: the sweep's results as index.html, results.csv, results.json and plots.

Why one self-contained HTML: a report is mailed, attached to an issue or opened
from a CI artifact; its plots are inline SVG and it fetches nothing.  Links in
its table (Verilog, manifest, co-simulation report, synthesis records) are
relative paths into the results store.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import os
from pathlib import Path

from fewbits.flow.store import Store, atomic_write_json, atomic_write_text
from fewbits.report import costs, stats, summary
from fewbits.report import data as rd


def _fmt(v, digits=2) -> str:
    if v is None or v == "":
        return "—"
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 100:  # counts divided by a PE count
            return f"{int(v):,}" if abs(v) >= 1000 else str(int(v))
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if v != 0 and abs(v) < 0.01:
            return f"{v:.2g}"
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 1000 else str(v)
    return str(v)


def _csv_rows(rows):
    out = []
    for r in rows:
        d = {k: r.get(k) for k in rd.FIELDS}
        d.update({f"link_{k}": r.get("links", {}).get(k) for k in rd.LINKS})
        out.append(d)
    return out


def summary_lines(data: dict) -> list[str]:
    """The lines a person reads first (per dataset/net group): the recommendation in numbers, its saving, the front."""
    lines = []
    groups = [g for g in data["groups"] if g["_rec"]["row"] is not None] or data["groups"][:1]
    for g in groups:
        rec = g["_rec"]
        r, base = rec["row"], rec.get("baseline")
        head = f"[{g['dataset']}, {g['net']}, {g['epochs']} epochs] " if len(groups) > 1 else ""
        rule = ("its 95 % upper bound" if g["rule"] == "confidence" else "its mean")
        lines.append(f"{head}{_cheapest(rec['metric'])}, error within {data['budget']:g} points of fp32 by {rule}: "
                     + g["text"])
        if base is not None:
            lines.append(f"fp32: {_interval_text(base)}" + (f"; {r['config']}: {_interval_text(r)}" if r else ""))
        else:  # nothing to compare against: the most accurate configuration, with its interval
            done = [s for s in data["summaries"] if rd.group_of(s) == (g["dataset"], g["net"], g["epochs"])
                    and s["n_seeds"]]
            if done:
                top = min(done, key=lambda s: s["test_error_mean"])
                lines.append(f"lowest mean error: {top['config']}: {_interval_text(top)}")
        if r is not None and base is not None and g["saving"]:
            parts = []
            for c, lab in (("mult_transistors", "multiplier transistors"), ("transistors", "MAC transistors"),
                           ("luts", "iCE40 LUTs"), ("energy_pj", "pJ/MAC (fewbits-45nm-v1)"),
                           ("area_um2", "sky130 µm²/MAC"), ("energy_sky130_pj", "sky130 pJ/MAC")):
                if c in g["saving"]:
                    parts.append(f"{_fmt(r[c])} vs {_fmt(base[c])} {lab} ({100 * g['saving'][c]:.0f}% less)")
            if isinstance(r.get("fmax_mhz"), (int, float)) and isinstance(base.get("fmax_mhz"), (int, float)):
                parts.append(f"{_fmt(r['fmax_mhz'], 0)} vs {_fmt(base['fmax_mhz'], 0)} MHz sky130 maximum clock "
                             f"({r['fmax_mhz'] / base['fmax_mhz']:.2f}x)")
            lines.append(f"vs {_baseline_mac(base)}: " + "; ".join(parts))
        else:
            lines.append(f"cost metric: {rec['metric']}")
        axis = rec["metric"] if rec["metric"] in g["pareto"] else "transistors"
        front = g["pareto"].get(axis) or []
        lab = {x["key"]: x["config"] for x in data["summaries"]}
        fails = sum(1 for x in data["rows"] if x["status"] == "failed")
        lines.append(f"Pareto front of the means ({axis}): "
                     + (", ".join(lab[k] for k in front) if front else "—")
                     + (f"; {fails} failed run{'s' * (fails != 1)}" if fails else ""))
    limits = sorted({x["limit_train"] for x in data["rows"] if x.get("limit_train")})
    if limits:
        lines.append(f"training set limited to the first {', '.join(str(n) for n in limits)} examples "
                     "(limit_train): errors are higher than with the full set")
    sources = [c for c in costs.COSTS if any(isinstance(x.get(c.field), (int, float)) for x in data["rows"])]
    sky = sorted({x["sky130_model"] for x in data["rows"] if x.get("sky130_model")})
    if any(c.target == "sky130" for c in sources):
        lines.append(f"sky130 figures: {', '.join(sky) or costs.SKY130_SOURCE}; per MAC unit, the maximum clock "
                     "from static timing of the mapped netlist")
    evals = sorted({x["limit_eval"] for x in data["rows"] if x.get("limit_eval")})
    if evals:
        lines.append(f"errors measured on the first {', '.join(str(n) for n in evals)} validation and test "
                     "examples only (limit_eval): wider intervals than on the full sets")
    return lines


def _cheapest(metric: str) -> str:
    """'cheapest by sky130 area' (the axis the recommendation ranked by; the fastest for a clock)."""
    c = costs.BY_FIELD.get(metric)
    if c is None:
        return f"cheapest by {metric}"
    return f"{'fastest' if c.higher_is_better else 'cheapest'} by {c.name}"


def _baseline_mac(base: dict) -> str:
    """What the saving is measured against, said plainly: the accumulator makes most of a MAC's cost."""
    acc = base.get("accumulator") or "exact"
    if acc == "exact":
        return f"the fp32 MAC with an exact accumulator ({base.get('acc') or 'Kulisch'}; no real design pays for it)"
    return f"the fp32 MAC (fp32 x fp32 products, {acc} accumulator)"


def _interval_text(s: dict) -> str:
    """'5.04 % (95 % interval 4.10 to 5.98, Student t over seeds; 3 seeds)'."""
    if s.get("test_error_mean") is None:
        return "no finished run"
    iv = (f"95 % interval {s['test_error_lo']:.2f} to {s['test_error_hi']:.2f}"
          if s.get("test_error_lo") == s.get("test_error_lo") else "no interval")  # NaN: one seed, size unknown
    n = s["n_seeds"]
    return f"{s['test_error_mean']:.2f} % ({iv}, {_method(s['interval'])}; {n} seed{'s' * (n != 1)})"


def _method(m: str) -> str:
    return "Wilson, one seed" if m == stats.WILSON else m


def _table(rows: list[dict], fields: list[str]) -> str:
    """CSV text of ``rows`` (lists joined by spaces, None empty)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else " ".join(map(str, r[k])) if isinstance(r.get(k), list)
                        else r[k]) for k in fields})
    return buf.getvalue()


def write_report(results_dir, out_dir, budget: float = 0.5, rule: str = "confidence", cost: str | None = None) -> dict:
    """Write the report of the store at ``results_dir`` into ``out_dir``; returns paths and summary.

    ``cost``: the axis the recommendation ranks by (None: the first every result has); one no
    result has is refused before anything is written.
    """
    store = Store(results_dir)
    if not store.points_dir.is_dir():
        raise ValueError(f"{results_dir}: not a results store (no points/ folder; accepted the --results "
                         "folder of `fewbits sweep`)")
    data = rd.build(store, budget, rule, cost)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = data["rows"]
    from fewbits.report.plots import all_figures

    figs = all_figures(data["summaries"], out)  # one mark per configuration: its mean and interval
    # results.json / results.csv: the same numbers as the store
    public_groups = [{k: v for k, v in g.items() if k != "_rec"} for g in data["groups"]]
    atomic_write_json(out / "results.json", {
        "budget": budget, "results_dir": os.path.relpath(Path(results_dir).resolve(), out.resolve()),
        "rule": rule, "cost": data["groups"][0]["metric"] if data["groups"] else cost,
        "cost_axes": [{"field": c.field, "label": c.label, "source": c.source} for c in costs.COSTS],
        "points": rows, "configurations": data["summaries"], "groups": public_groups, "paper": data["paper"], "paper_source": data["paper_source"],
        "figures": [{"name": f["name"], "png": f["png"], "svg": f["svg"]} for f in figs],
        "summary": summary_lines(data)})
    atomic_write_text(out / "results.csv", _table(_csv_rows(rows), rd.FIELDS + [f"link_{k}" for k in rd.LINKS]))
    atomic_write_text(out / "summary.csv", _table(data["summaries"], summary.SUMMARY_FIELDS))
    atomic_write_text(out / "index.html", render_html(data, figs, store, out))
    return {"index": out / "index.html", "csv": out / "results.csv", "summary_csv": out / "summary.csv",
            "json": out / "results.json", "figures": figs, "summary": summary_lines(data), "data": data}


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:12px} .summary{background:#f3f8f1;border-left:4px solid #2ca02c;padding:8px 14px}
.summary p{margin:4px 0;font-size:14px}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 6px;
text-align:right} th{background:#f4f4f4} td.l,th.l{text-align:left}
tr.failed td{background:#fdecea} tr.rec td{background:#fff6d5} tr.partial td{color:#555}
.figs{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;border:1px solid #eee;padding:6px}
figure svg{width:560px;height:auto} figcaption{font-size:11px;color:#666}
.fam-fixed{color:#d62728}.fam-dfixed{color:#2ca02c}.fam-float{color:#1f77b4}.fam-fp32{color:#444}
.note{font-size:12px;color:#666}
"""


def _e(s) -> str:
    return html.escape("" if s is None else str(s))


def _link(store: Store, out: Path, rel: str | None, text: str) -> str:
    if not rel:
        return ""
    target = os.path.relpath(store.abs(rel).resolve(), out.resolve())
    return f'<a href="{_e(target)}">{_e(text)}</a>'


def _configurations_html(data: dict) -> str:
    """The summary table: one row per configuration, its mean over seeds, interval and how it was made."""
    parts = ["<h2>Configurations (seeds as replicates)</h2><table><tr><th class='l'>configuration</th>"
             "<th class='l'>dataset / net</th><th>seeds</th><th>mean test error %</th><th>std</th>"
             "<th>95 % interval</th><th class='l'>interval method</th><th>over fp32 (paired)</th>"
             "<th>95 % upper bound</th>" + "".join(_cost_th(c) for c in costs.COSTS) + "</tr>"]
    for s in data["summaries"]:
        cls = "rec" if s.get("recommended") else ("failed" if s["status"] == "failed" else "")
        mark = (" ★" if s.get("recommended") else "") + (" ◆" if s.get("pareto") else "")
        seeds = f"{s['n_seeds']}" + (f" of {s['n_runs']}" if s["n_runs"] != s["n_seeds"] else "")
        parts.append(
            f"<tr class='{cls}'><td class='l fam-{s['family']}'>{_e(s['config'])}{mark}</td>"
            f"<td class='l'>{_e(s['dataset'])} / {_e(s['net'])}</td><td>{_e(seeds)}</td>"
            f"<td>{_fmt(s.get('test_error_mean'))}</td><td>{_fmt(s.get('test_error_std'))}</td>"
            f"<td>{_fmt(s.get('test_error_lo'))} to {_fmt(s.get('test_error_hi'))}</td>"
            f"<td class='l'>{_e(s['interval'])}</td><td>{_signed(s.get('diff_mean'))}</td>"
            f"<td>{_signed(s.get('diff_upper'))}</td>" + "".join(_cost_td(s, c) for c in costs.COSTS) + "</tr>")
    parts.append("</table><p class='note'>Runs that differ only in the seed are one configuration; its hardware "
                 "is built, co-simulated and measured once. Interval: Student t over the seeds, or with one seed the "
                 "Wilson score interval of the test-set error count. Over fp32: the mean difference paired by seed "
                 "(percentage points) and its one-sided 95 % upper bound. Seeds \"2 of 3\": a run failed (see "
                 "Failed points).</p>")
    parts.append(_sources_html())
    return "\n".join(parts)


def _cost_th(c: costs.Cost) -> str:
    """A cost column's header, its source as the tooltip."""
    return f"<th title='{_e(c.source)}'>{_e(c.label)}</th>"


def _cost_td(row: dict, c: costs.Cost) -> str:
    return f"<td>{_fmt(row.get(c.field), 3 if 'pj' in c.field else 2)}</td>"


def _sources_html() -> str:
    """Where every cost column comes from (the report names the model behind each number)."""
    return ("<p class='note'>Cost sources: " + "; ".join(f"{_e(c.label)}: {_e(c.source)}" for c in costs.COSTS)
            + ".</p>")


def _signed(v) -> str:
    return "—" if not isinstance(v, (int, float)) or v != v else f"{v:+.2f}"


def render_html(data: dict, figs: list[dict], store: Store, out: Path) -> str:
    rows = data["rows"]
    n_ok = sum(r["status"] == "ok" for r in rows)
    n_partial = sum(r["status"] == "partial" for r in rows)
    n_fail = sum(r["status"] == "failed" for r in rows)
    meta = store.sweep_meta() or {}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fewbits report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>fewbits: test error against multiplier cost</h1>",
             f"<div class='meta'>sweep <b>{_e(meta.get('name', '?'))}</b> · results store "
             f"<code>{_e(store.root)}</code> · {len(rows)} points: {n_ok} ok, {n_partial} partial, {n_fail} failed · "
             f"budget {data['budget']:g} points over fp32 ({'95 % upper bound' if data['rule'] == 'confidence' else 'mean'}"
             f" rule) · generated "
             f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</div>"]
    parts.append("<h2>Recommendation</h2><div class='summary'>")
    parts += [f"<p>{_e(line)}</p>" for line in summary_lines(data)]
    parts.append("</div>")
    unavailable = sorted({f"{n}: {why}" for r in rows for n, why in r.get("unavailable", {}).items()})
    if unavailable:
        parts.append("<p class='note'>Stages not run (not available when the sweep ran): "
                     + _e("; ".join(unavailable[:6])) + "</p>")

    parts.append("<h2>Figures</h2><div class='figs'>")
    for f in figs:
        parts.append(f"<figure id='fig-{_e(f['name'])}'>{f['inline']}<figcaption>{_e(f['name'])} · "
                     f"<a href='{_e(f['png'])}'>PNG</a> · <a href='{_e(f['svg'])}'>SVG</a></figcaption></figure>")
    if not figs:
        parts.append("<p class='note'>no figure: no finished point yet</p>")
    parts.append("</div>")

    parts.append(_configurations_html(data))
    labels = {r["key"]: r for r in data["summaries"]}
    parts.append("<h2>Pareto fronts (of the means over seeds)</h2>")
    for g in data["groups"]:
        for c in costs.COSTS:
            cost, keys = c.field, g["pareto"].get(c.field) or []
            if not keys:
                continue
            parts.append(f"<p><b>{_e(g['dataset'])}, {_e(g['net'])}</b> — {_e(c.label)} ({_e(c.source)}):</p><table><tr>"
                         "<th class='l'>configuration</th><th>cost</th><th>mean test error %</th>"
                         "<th>95 % interval</th></tr>")
            for k in keys:
                r = labels[k]
                parts.append(f"<tr><td class='l fam-{r['family']}'>{_e(r['config'])}</td><td>{_fmt(r.get(cost))}</td>"
                             f"<td>{_fmt(r['test_error'])}</td><td>{_fmt(r.get('test_error_lo'))} to "
                             f"{_fmt(r.get('test_error_hi'))}</td></tr>")
            parts.append("</table>")

    parts.append("<h2>All points</h2><table><tr><th class='l'>status</th><th class='l'>dataset / net</th>"
                 "<th class='l'>family</th><th class='l'>propagation</th><th class='l'>update</th>"
                 "<th>bits (with sign / paper)</th><th>int bits</th><th>max ovf</th><th>test error %</th>"
                 "<th>valid %</th><th>transistors / MAC</th><th>multiplier transistors</th><th>LUTs / MAC</th><th>DSPs</th><th>pJ / MAC</th>"
                 "<th>sky130 µm² / MAC</th><th>sky130 pJ / MAC</th><th>sky130 MHz</th>"
                 "<th>co-sim MACs</th><th class='l'>artifacts</th></tr>")
    for r in rows:
        cls = "failed" if r["status"] == "failed" else ("rec" if r.get("recommended") else r["status"])
        L = r.get("links", {})
        links = " ".join(x for x in [
            _link(store, out, L.get("verilog"), "Verilog"), _link(store, out, L.get("manifest"), "manifest"),
            _link(store, out, L.get("cosim_report"), "co-sim"), _link(store, out, L.get("synth_cmos"), "synth cmos"),
            _link(store, out, L.get("synth_ice40"), "synth ice40"), _link(store, out, L.get("synth_sky130"), "synth sky130"),
            _link(store, out, L.get("power_sky130"), "power sky130"),
            _link(store, out, L.get("synth_multiplier"), "synth multiplier"), _link(store, out, L.get("power_record"), "power"),
            _link(store, out, L.get("train_result"), "training")] if x)
        status = r["status"] + (" ★" if r.get("recommended") else "") + (" ◆" if r.get("pareto") else "")
        if r["status"] == "failed":
            status = f"failed: {r.get('reason')}"
        parts.append(
            f"<tr class='{cls}'><td class='l'>{_e(status)}</td><td class='l'>{_e(r['dataset'])} / {_e(r['net'])}</td>"
            f"<td class='l fam-{r['family']}'>{_e(r['family'])}</td><td class='l'>{_e(r['prop'])}</td>"
            f"<td class='l'>{_e(r['update'])}</td><td>{r['prop_bits']}/{r['update_bits']} · "
            f"{r['prop_bits_paper']}/{r['update_bits_paper']}</td><td>{_fmt(r.get('int_bits'))}</td>"
            f"<td>{_fmt(r.get('max_overflow'))}</td><td>{_fmt(r.get('test_error'))}</td>"
            f"<td>{_fmt(r.get('valid_error'))}</td><td>{_fmt(r.get('transistors'))}</td><td>{_fmt(r.get('mult_transistors'))}</td><td>{_fmt(r.get('luts'))}</td>"
            f"<td>{_fmt(r.get('dsps'))}</td><td>{_fmt(r.get('energy_pj'), 3)}</td><td>{_fmt(r.get('area_um2'))}</td>"
            f"<td>{_fmt(r.get('energy_sky130_pj'), 3)}</td><td>{_fmt(r.get('fmax_mhz'), 0)}</td><td>{_fmt(r.get('cosim_macs'))}</td>"
            f"<td class='l'>{links}</td></tr>")
    parts.append("</table><p class='note'>★ recommended · ◆ on a Pareto front · bits: as the hardware counts them "
                 "(with the sign bit) and as the paper counts them (without) · costs per MAC unit (array figures "
                 "divided by rows×cols) · failed points are never plotted.</p>")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        parts.append("<h2>Failed points</h2><table><tr><th class='l'>point</th><th class='l'>reason</th></tr>")
        for r in failed:
            parts.append(f"<tr class='failed'><td class='l'>{_e(r['label'])}</td><td class='l'>{_e(r['reason'])}</td></tr>")
        parts.append("</table>")

    parts.append(f"<h2>The paper's numbers</h2><p class='note'>{_e(data['paper_source'])}. Ours are shown beside "
                 f"them only for points on the same dataset ({rd.PAPER_DATASET}); this sweep's datasets: "
                 f"{_e(', '.join(sorted({r['dataset'] for r in rows})) or '—')}.</p><table><tr>"
                 "<th class='l'>format</th><th>propagation bits</th><th>update bits</th><th>paper test error %</th>"
                 "<th>ours %</th></tr>")
    for p in data["paper"]:
        parts.append(f"<tr><td class='l fam-{p['family']}'>{_e(p['format'])}</td><td>{p['prop_bits']}</td>"
                     f"<td>{p['update_bits']}</td><td>{p['test_error']:.2f}</td><td>{_fmt(p['ours'])}</td></tr>")
    parts.append("</table>")
    kept = sorted({(r["net"], r["keep_float"]) for r in rows if r.get("keep_float")})
    if kept:
        parts.append("<p class='note'>Kept in float, outside the MAC contract (keep_float): "
                     + _e("; ".join(f"{net}: {', '.join(k.split())}" for net, k in kept)) + ".</p>")
    models = sorted({r["power_model"] for r in rows if r.get("power_model")})
    if models:
        parts.append(f"<p class='note'>Energy model: {_e(', '.join(models))} (see the power records).</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
