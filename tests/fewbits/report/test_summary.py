"""Configurations over seeds, and the recommendation by the confidence rule versus the mean rule."""

from __future__ import annotations

import math

import pytest

from fewbits.report import summary as S

T95_2 = 2.919985580355516


def run(family, prop, seed, err, transistors, status="ok", n_test=400):
    return {"key": f"{prop}-{seed}", "status": status, "dataset": "digits", "net": "mlp-small", "epochs": 1,
            "family": family, "prop": prop, "update": prop, "acc": None, "int_bits": None, "max_overflow": None,
            "rows": 1, "cols": 1, "k_max": 128, "seed": seed, "test_error": err, "transistors": transistors,
            "test_examples": n_test, "prop_bits": 8}


def sweep():
    rows = []
    for s, (b, a, c) in enumerate([(5.0, 5.2, 5.3), (5.0, 4.4, 5.3), (5.0, 6.0, 5.4)]):
        rows += [run("fp32", "fp32", s, b, 1000), run("fixed", "fixed:8:4", s, a, 100),
                 run("dfixed", "dfixed:8", s, c, 200)]
    return rows


def test_one_row_per_configuration_with_its_seeds():
    sm = {s["config"]: s for s in S.summarize(sweep())}
    assert set(sm) == {"fp32", "fixed:8:4", "dfixed:8"}
    a = sm["fixed:8:4"]
    assert a["n_seeds"] == 3 and a["seeds"] == [0, 1, 2] and a["transistors"] == 100
    assert a["test_error_mean"] == pytest.approx(5.2) and a["test_error_std"] == pytest.approx(0.8)


def test_mean_rule_and_confidence_rule_disagree():
    sm = S.summarize(sweep())
    mean = S.recommend(sm, 0.5, "transistors", rule="mean")
    conf = S.recommend(sm, 0.5, "transistors")
    # fixed:8:4 is +0.20 on average but spread +-0.8: only the mean rule takes it
    assert mean["row"]["config"] == "fixed:8:4"
    assert conf["row"]["config"] == "dfixed:8"
    d = conf["row"]
    assert d["diff_mean"] == pytest.approx(1 / 3) and d["diff_n"] == 3
    sd = math.sqrt(((0.3 - 1 / 3) ** 2 * 2 + (0.4 - 1 / 3) ** 2) / 2)
    assert d["diff_upper"] == pytest.approx(1 / 3 + T95_2 * sd / math.sqrt(3))
    text = S.recommendation_text(conf)
    assert text.startswith("dfixed:8: +0.33 points over fp32 (95 % upper bound +0.43; 3 seeds")


def test_nothing_qualifies_names_the_candidate_and_the_seeds_to_decide():
    rows = [r for r in sweep() if r["prop"] != "dfixed:8"]
    rec = S.recommend(S.summarize(rows), 0.5, "transistors")
    assert rec["row"] is None and rec["candidate"]["config"] == "fixed:8:4"
    assert rec["seeds_needed"] is not None and rec["seeds_needed"] > 3
    assert "best candidate fixed:8:4" in S.recommendation_text(rec) and "seeds would decide" in S.recommendation_text(rec)


def test_a_failed_seed_is_reported_with_n_2_never_dropped():
    rows = sweep()
    for r in rows:
        if r["prop"] == "dfixed:8" and r["seed"] == 1:
            r["status"], r["test_error"] = "failed", None
    d = {s["config"]: s for s in S.summarize(rows)}["dfixed:8"]
    assert d["n_seeds"] == 2 and d["n_runs"] == 3 and d["seeds"] == [0, 2]
    sm = S.summarize(rows)
    S.recommend(sm, 0.5, "transistors")
    assert {s["config"]: s["diff_n"] for s in sm}["dfixed:8"] == 2


def test_one_seed_uses_the_wilson_interval():
    rows = [run("fp32", "fp32", 0, 5.0, 1000), run("dfixed", "dfixed:8", 0, 5.25, 200)]
    sm = {s["config"]: s for s in S.summarize(rows)}
    assert sm["dfixed:8"]["interval"].startswith("Wilson") and sm["dfixed:8"]["test_error_lo"] < 5.25
    rec = S.recommend(list(sm.values()), 0.5, "transistors")
    assert rec["row"] is None and rec["candidate"]["config"] == "dfixed:8"  # one seed: upper bound far above 0.5
    assert sm["dfixed:8"]["diff_method"].startswith("one seed")


def _row(family, prop, seed, err, transistors):
    """A per-run report row as ``data.row_of`` makes it (only the fields the report reads)."""
    r = run(family, prop, seed, err, transistors)
    return {**r, "label": prop, "update_bits": 8, "prop_bits_paper": 7, "update_bits_paper": 7, "links": {},
            "valid_error": err, "limit_train": None}


@pytest.mark.parametrize("rule, chosen", [("mean", "fixed:8:4"), ("confidence", "dfixed:8")])
def test_the_report_follows_the_rule(rule, chosen):
    """The report (data.assemble, summary lines) on constructed runs where the two rules disagree."""
    from fewbits.report import data as D
    from fewbits.report.build import summary_lines

    rows = [_row(r["family"], r["prop"], r["seed"], r["test_error"], r["transistors"]) for r in sweep()]
    data = D.assemble(rows, 0.5, rule)
    (g,) = data["groups"]
    rec = {s["key"]: s for s in data["summaries"]}[g["recommended"]]
    assert rec["config"] == chosen and rec["recommended"]
    assert {r["config"] for r in data["rows"] if r["recommended"]} == {chosen}
    assert sum(r["recommended"] for r in data["rows"]) == 3  # every seed of the configuration is flagged
    assert g["saving"]["transistors"] == 1 - rec["transistors"] / 1000
    lines = summary_lines(data)
    assert lines[0].endswith(g["text"]) and g["text"].startswith(f"{chosen}: ")
    assert ("95 % upper bound" in lines[0]) and (("mean within" in lines[0]) == (rule == "mean"))
    assert "fp32: 5.00 % (95 % interval 5.00 to 5.00, Student t over seeds; 3 seeds)" in lines[1]


def test_a_bad_rule_is_a_value_error():
    from fewbits.report import data as D

    with pytest.raises(ValueError, match="accepted confidence, mean"):
        D.assemble([], 0.5, "luckiest")


def test_a_limited_training_set_is_stated():
    """The Fashion-MNIST demo trains on a subset: its report says how many examples."""
    from fewbits.report import data as D
    from fewbits.report.build import summary_lines

    rows = [dict(_row(r["family"], r["prop"], r["seed"], r["test_error"], r["transistors"]), limit_train=10000)
            for r in sweep()]
    assert "training set limited to the first 10000 examples" in summary_lines(D.assemble(rows, 0.5))[-1]
    rows = [_row(r["family"], r["prop"], r["seed"], r["test_error"], r["transistors"]) for r in sweep()]
    assert not any("limited" in line for line in summary_lines(D.assemble(rows, 0.5)))
    rows = [dict(_row(r["family"], r["prop"], r["seed"], r["test_error"], r["transistors"]), limit_eval=1000)
            for r in sweep()]
    assert "errors measured on the first 1000 validation and test examples" in summary_lines(D.assemble(rows, 0.5))[-1]
    assert not any("limit_eval" in line for line in summary_lines(D.assemble(
        [_row(r["family"], r["prop"], r["seed"], r["test_error"], r["transistors"]) for r in sweep()], 0.5)))


def test_accumulators_are_configurations_of_their_own_and_fp32_with_an_fp32_accumulator_is_the_baseline():
    """fp32 with an exact (Kulisch) accumulator and fp32 with an fp32 accumulator are two configurations;
    the baseline is the one hardware builds even where the exact one has the lower mean error."""
    from fewbits.report import data as D
    from fewbits.report.build import summary_lines

    rows = []
    for s, (exact, built, fx) in enumerate([(4.0, 5.0, 5.1), (4.0, 5.0, 5.2), (4.0, 5.0, 5.1)]):
        rows += [dict(_row("fp32", "fp32", s, exact, 200000), accumulator="exact", acc="acc:555:298",
                      key=f"ex-{s}"),
                 dict(_row("fp32", "fp32", s, built, 20000), accumulator="fp32", acc="fp32", key=f"f32-{s}"),
                 dict(_row("fixed", "fixed:8:4", s, fx, 1000), accumulator="exact", acc="acc:20:8")]
    sm = {s["config"]: s for s in S.summarize(rows)}
    assert set(sm) == {"fp32", "fp32, acc fp32", "fixed:8:4"}
    assert sm["fp32, acc fp32"]["acc"] == "fp32" and sm["fp32"]["acc"] == "acc:555:298"
    assert S.baseline(list(sm.values()))["config"] == "fp32, acc fp32"
    data = D.assemble(rows, 0.5)
    lines = summary_lines(data)
    assert "fixed:8:4: +0.13 points over fp32, acc fp32 (" in lines[0]
    assert lines[2].startswith("vs the fp32 MAC (fp32 x fp32 products, fp32 accumulator): ")
    assert "1,000 vs 20,000 MAC transistors (95% less)" in lines[2]
    # without the fp32-accumulator configuration the exact one is the baseline, and the line says what it is
    rows = [r for r in rows if r["accumulator"] != "fp32"]
    lines = summary_lines(D.assemble(rows, 5.0))
    assert lines[2].startswith("vs the fp32 MAC with an exact accumulator (acc:555:298; ")
