"""The verdict rule across seeds (core/claims.py): t intervals against closed forms, each verdict boundary, and
the claims.json shape."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from athanor.core.claims import INTERVAL, RULE, Check, claim, format_table, judge_check, load, t_interval, tally


def test_t_interval_matches_the_textbook_value():
    # 3 values, mean 2, s = 1: half-width t(0.975, 2) * 1 / sqrt(3) with t(0.975, 2) = 4.302653
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0)
    assert (hi - lo) / 2 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert t_interval([5.0]) is None and t_interval([]) is None
    assert t_interval([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))  # agreeing seeds: zero width


def test_t_interval_covers_the_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(4000):
        lo, hi = t_interval(rng.normal(1.0, 2.0, size=3))
        hits += lo <= 1.0 <= hi
    assert 0.93 < hits / 4000 < 0.97  # binomial sd at 4000 trials is 0.0034


@pytest.mark.parametrize("values, op, thr, verdict", [
    ([1.0, 1.1, 0.9], ">", 0.0, "reproduced"),         # interval [0.75, 1.25] clears 0
    ([-1.0, -1.1, -0.9], ">", 0.0, "not_reproduced"),  # wholly below
    ([1.0, -1.0, 0.5], ">", 0.0, "inconclusive"),      # straddles
    ([2.0, 2.0, 2.0], ">=", 2.0, "reproduced"),         # zero width, on the threshold: >= holds
    ([2.0, 2.0, 2.0], ">", 2.0, "not_reproduced"),      # ... and > does not
    ([0.1, 0.12, 0.11], "<", 0.25, "reproduced"),
    ([30.0, 30.0, 30.0], ">=", 30.0, "reproduced"),
    ([30.0, 29.0, 30.0], ">=", 30.0, "inconclusive"),   # mean 29.7, interval [28.2, 31.1]
    ([1.0, 1.1, 0.9], "within", (0.5, 2.0), "reproduced"),
    ([3.0, 3.1, 2.9], "within", (0.5, 2.0), "not_reproduced"),
    ([1.5, 2.5, 2.0], "within", (0.5, 2.0), "inconclusive"),
])
def test_check_verdicts_at_each_boundary(values, op, thr, verdict):
    assert judge_check(Check("x", values, op, thr))["verdict"] == verdict


def test_one_seed_is_inconclusive_but_leans():
    c = claim("a", "s", [Check("x", [0.7], ">", 0.5)], "full")
    assert c.verdict == "inconclusive" and c.leans == "reproduced" and c.seeds == 1
    assert "one seed" in c.reason
    c = claim("a", "s", [Check("x", [0.3], ">", 0.5)], "quick")
    assert c.verdict == "inconclusive" and c.leans == "not_reproduced"


def test_a_once_check_is_judged_on_its_value():
    c = claim("mc", "s", [Check("max |z|", [1.2], "<", 4.0, once=True)], "full")
    assert c.verdict == "reproduced" and c.checks[0]["ci"] is None and c.reason is None
    assert claim("mc", "s", [Check("max |z|", [5.0], "<", 4.0, once=True)], "full").verdict == "not_reproduced"


def test_checks_combine_all_must_hold_and_any_failure_fails():
    good, bad, unsure = [1.0, 1.1, 0.9], [-1.0, -1.1, -0.9], [1.0, -1.0, 0.5]
    def verdict(*vals):
        return claim("a", "s", [Check(f"c{i}", v, ">", 0) for i, v in enumerate(vals)], "full").verdict
    assert verdict(good, good) == "reproduced"
    assert verdict(good, unsure) == "inconclusive"
    assert verdict(unsure, bad) == "not_reproduced"
    assert verdict(good, bad) == "not_reproduced"


def test_tiny_invalid_and_missing_are_inconclusive_whatever_the_numbers():
    good = [Check("x", [1.0, 1.1, 0.9], ">", 0)]
    assert claim("a", "s", good, "tiny").verdict == "inconclusive"
    c = claim("a", "s", good, "full", valid=False, why_invalid="all success rates are 0")
    assert c.verdict == "inconclusive" and c.reason == "all success rates are 0" and c.leans == "reproduced"
    c = claim("a", "s", [Check("x", [1.0, math.nan, 0.9], ">", 0)], "full")
    assert c.verdict == "inconclusive" and c.leans is None and c.checks[0]["per_seed"][1] is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=6), st.floats(-1e3, 1e3))
def test_verdicts_are_consistent_with_the_interval(values, thr):
    r = judge_check(Check("x", values, ">", thr))
    lo, hi = t_interval(values)  # unrounded (claims.json keeps 6 significant digits)
    assert lo <= float(np.mean(values)) <= hi
    assert r["ci"] == pytest.approx([lo, hi], rel=1e-5, abs=1e-12)
    expected = "reproduced" if lo > thr else "not_reproduced" if hi <= thr else "inconclusive"
    assert r["verdict"] == expected
    # the opposite claim on the same numbers never gets the same decisive verdict
    flipped = judge_check(Check("x", values, "<=", thr))["verdict"]
    assert {r["verdict"], flipped} != {"reproduced"} and {r["verdict"], flipped} != {"not_reproduced"} \
        or r["verdict"] == flipped == "inconclusive"


def test_claims_json_keeps_old_fields_and_adds_the_interval(tmp_path):
    c = claim("mbd", "MBD covers more bins", [Check("bins(mbd) - bins(gan)", [4.0, 1.0, 5.0], ">", 0),
                                              Check("err(mbd) - err(gan)", [0.123456789, 2.0, 1.0], ">", 0)], "full")
    d = c.to_json()
    assert {"id", "statement", "metric", "threshold", "measured", "verdict"} <= set(d)
    assert {"seeds", "interval", "rule", "leans", "reason", "checks"} <= set(d)
    assert d["seeds"] == 3 and d["interval"] == INTERVAL and d["rule"] == RULE
    assert d["metric"] == "bins(mbd) - bins(gan); err(mbd) - err(gan)" and d["threshold"] == "> 0; > 0"
    assert d["measured"]["err(mbd) - err(gan)"][0] == 0.123457  # 6 significant digits
    k = d["checks"][0]
    assert k["per_seed"] == [4.0, 1.0, 5.0] and k["mean"] == pytest.approx(10 / 3, rel=1e-5) and len(k["ci"]) == 2
    (tmp_path / "claims.json").write_text(json.dumps([d]))
    items = load(tmp_path)
    assert tally(items) == {"reproduced": 0, "not_reproduced": 0, "inconclusive": 1}
    text = format_table(items)
    assert "leans reproduced" in text and "per seed [4, 1, 5]" in text and "95% CI" in text


def test_format_table_reads_claims_written_before_the_rule():
    old = [{"id": "a", "statement": "s", "metric": "m", "threshold": 1, "measured": 0.5, "verdict": "reproduced"}]
    text = format_table(old)
    assert "reproduced" in text and "measured 0.5" in text


def test_load_rejects_a_damaged_file(tmp_path):
    from athanor.core.errors import AthanorError

    (tmp_path / "claims.json").write_text('{"not": "a list"}')
    with pytest.raises(AthanorError, match="--reanalyse"):
        load(tmp_path)


def test_a_check_rejects_a_malformed_condition():
    with pytest.raises(ValueError, match="op must be"):
        Check("x", [1.0], "=>", 0)
    with pytest.raises(ValueError, match="within"):
        Check("x", [1.0], "within", 0.5)
