"""Open-endedness measures of the Multicell World censuses: MODES, Bedau-Packard activity and its neutral shadow,
and the phylogeny summaries, against hand-worked answers, brute force and invariants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from athanor.systems.multicell import measures as ms


def _census(rows, width=None):
    """(types uint32, alive) from rows of types, None marking an empty slot."""
    width = width or max(len(r) for r in rows)
    types = np.zeros((len(rows), width), dtype=np.uint32)
    alive = np.zeros((len(rows), width), dtype=bool)
    for t, row in enumerate(rows):
        for m, x in enumerate(row):
            if x is not None:
                types[t, m], alive[t, m] = x, True
    return types, alive


def _random_run(seed, T=30, M=24, n_founder_types=5, p_death=0.2, p_birth=0.5, p_mut=0.1):
    """A consistent random census: slots die and are refilled from a random living parent, mutating sometimes."""
    rng = np.random.default_rng(seed)
    alive = np.zeros((T, M), dtype=bool)
    types = np.zeros((T, M), dtype=np.uint32)
    parent = np.zeros((T, M), dtype=np.uint32)
    born = np.zeros((T, M), dtype=np.int32)
    alive[0] = rng.random(M) < 0.8
    types[0] = rng.integers(0, n_founder_types, M) * 7919 + 11
    parent[0] = types[0]
    next_type = 10**6
    for t in range(1, T):
        alive[t], types[t], parent[t], born[t] = alive[t - 1], types[t - 1], parent[t - 1], born[t - 1]
        alive[t] &= rng.random(M) >= p_death
        pool = np.flatnonzero(alive[t - 1])
        for m in np.flatnonzero(~alive[t]):
            if pool.size and rng.random() < p_birth:
                p = types[t - 1, rng.choice(pool)]
                alive[t, m], born[t, m], parent[t, m] = True, 10 * t - 1, p
                if rng.random() < p_mut:
                    types[t, m], next_type = next_type, next_type + 1
                else:
                    types[t, m] = p
    return types, alive, parent, born


def _present(types, alive, t):
    """{type: abundance} at census t, by brute force."""
    out = {}
    for x in types[t][alive[t]].tolist():
        out[x] = out.get(x, 0) + 1
    return out


# --- persistence and MODES ------------------------------------------------------------------------------------

ROWS = [[1, 1, 2, None], [1, 3, None, None], [1, 2, 3, 3], [4, 2, 2, None]]


def test_persistent_with_lag_hand_worked():
    types, alive = _census(ROWS)
    assert ms.persistent(types, alive, 1) == [{1: 1}, {1: 1, 3: 2}, {2: 2}]
    assert ms.persistent(types, alive, 2) == [{1: 1, 2: 1}, {}]
    assert ms.persistent(types, alive, 3) == [{2: 2}]  # alive at 0 and 3, though not at 1
    assert ms.persistent(types, alive, 0) == [{1: 2, 2: 1}, {1: 1, 3: 1}, {1: 1, 2: 1, 3: 2}, {4: 1, 2: 2}]
    assert ms.persistent(types, alive, 4) == []
    with pytest.raises(ValueError):
        ms.persistent(types, alive, -1)


@pytest.mark.parametrize("lag", [0, 1, 3, 7])
def test_persistent_matches_brute_force(lag):
    types, alive, _, _ = _random_run(1, p_mut=0.3)
    got = ms.persistent(types, alive, lag)
    assert len(got) == types.shape[0] - lag
    for j, d in enumerate(got):
        now, before = _present(types, alive, lag + j), _present(types, alive, j)
        assert d == {x: n for x, n in now.items() if x in before}


def test_dead_slots_are_ignored_whatever_their_type():
    types, alive = _census(ROWS)
    noisy = types.copy()
    noisy[~alive] = 99
    assert ms.persistent(noisy, alive, 1) == ms.persistent(types, alive, 1)


def test_change_and_novelty_hand_worked():
    # lag 0: P = {1,2}, {2,3}, {1,3}, {1,3,4}; type 1 returns at census 2: change but not novelty.
    types, alive = _census([[1, 2, 2], [2, 3, None], [1, 3, 3], [1, 3, 4]])
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 0)
    assert r["census"].tolist() == [0, 1, 2, 3]
    assert r["change"].tolist() == [2, 1, 1, 1]
    assert r["novelty"].tolist() == [2, 1, 0, 1]
    assert r["richness"].tolist() == [2, 2, 2, 3]
    # lag 1: P(1) = {2}, P(2) = {3}, P(3) = {1, 3}.
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 1, ticks=np.array([0, 5, 10, 15]))
    assert r["census"].tolist() == [1, 2, 3]
    assert r["ticks"].tolist() == [5, 10, 15]
    assert r["richness"].tolist() == [1, 1, 2]
    assert r["change"].tolist() == [1, 1, 1]
    assert r["novelty"].tolist() == [1, 1, 1]


def test_change_is_zero_once_persistent_set_is_stable():
    types, alive = _census([[5, 6, 7]] * 6)
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 2)
    assert r["change"].tolist() == [3, 0, 0, 0]
    assert r["novelty"].tolist() == [3, 0, 0, 0]
    assert r["ecology"] == pytest.approx([math.log2(3)] * 4)


@pytest.mark.parametrize("lag", [0, 2, 5])
def test_modes_match_brute_force(lag):
    types, alive, _, _ = _random_run(7, T=40, p_mut=0.25)
    comp = np.random.default_rng(3).integers(1, 8, size=types.shape).astype(np.int32)
    r = ms.modes(types, alive, comp, lag)
    P = [set(d) for d in ms.persistent(types, alive, lag)]
    ever: set[int] = set()
    for j, p in enumerate(P):
        t = lag + j
        assert r["change"][j] == len(p - P[j - 1]) if j else len(p)
        assert r["novelty"][j] == len(p - ever)
        ever |= p
        in_p = alive[t] & np.isin(types[t], list(p))
        assert r["complexity"][j] == (comp[t][in_p].max() if in_p.any() else 0)
        n = np.array([np.count_nonzero(types[t][in_p] == x) for x in p], dtype=float)
        h = float(-(n / n.sum() * np.log2(n / n.sum())).sum()) if n.size else 0.0
        assert r["ecology"][j] == pytest.approx(h, abs=1e-12)
    assert r["novelty"].sum() == len(ever)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_ecology_is_log2_k_for_k_equal_types(k):
    row = [x for x in range(10, 10 + k) for _ in range(4)]  # k types, 4 organisms each
    types, alive = _census([row, row])
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 1)
    assert r["ecology"][0] == pytest.approx(math.log2(k), abs=1e-12)
    if k == 1:
        assert r["ecology"][0] == 0.0


def test_ecology_counts_only_persistent_types():
    # 2:1:1 over persistent types -> 1.5 bits; the transient type 9 (not alive lag censuses earlier) is left out.
    types, alive = _census([[1, 2, 3, None, None], [1, 1, 2, 3, 9]])
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 1)
    assert r["ecology"][0] == pytest.approx(1.5)
    assert r["richness"][0] == 3


def test_complexity_is_max_over_persistent_organisms():
    types, alive = _census([[1, 2, None], [1, 2, 3], [4, 4, None]])
    comp = np.array([[2, 3, 0], [2, 5, 7], [6, 6, 0]], dtype=np.int32)
    r = ms.modes(types, alive, comp, 1)
    # census 1: types 1, 2 persist (3 is new, complexity 7, excluded) -> 5; census 2: type 4 is new -> none -> 0
    assert r["complexity"].tolist() == [5, 0]
    assert r["ecology"].tolist() == [1.0, 0.0]
    assert r["richness"].tolist() == [2, 0]


def test_modes_empty_when_lag_reaches_the_end():
    types, alive = _census(ROWS)
    r = ms.modes(types, alive, np.ones_like(types, dtype=np.int32), 9)
    assert all(v.shape == (0,) for v in r.values())


# --- activity -------------------------------------------------------------------------------------------------


def test_activity_hand_worked():
    # n_1 = 2,1,1,0 ; n_2 = 1,2,0,1 ; n_3 = 0,0,0,2
    types, alive = _census([[1, 1, 2], [1, 2, 2], [1, None, None], [2, 3, 3]])
    a = ms.activity(types, alive)
    assert a.as_dict() == {1: 4, 2: 4, 3: 2}
    cum = {(t, int(a.codes[k])): int(c) for t, k, c in zip(a.census, a.type_index, a.cumulative, strict=True)}
    assert cum == {(0, 1): 2, (0, 2): 1, (1, 1): 3, (1, 2): 3, (2, 1): 4, (3, 2): 4, (3, 3): 2}
    assert a.diversity().tolist() == [2, 2, 1, 2]
    assert a.total().tolist() == [3, 6, 4, 6]
    assert a.mean().tolist() == [1.5, 3.0, 4.0, 3.0]
    # type 1 crosses 3 at census 2 and still counts at census 3, when it is gone
    assert a.count_above(3).tolist() == [0, 0, 1, 2]
    assert a.count_above(-1).tolist() == [2, 2, 2, 3]
    assert a.count_above(100).tolist() == [0, 0, 0, 0]


def test_activity_matches_cumulative_sums():
    types, alive, _, _ = _random_run(4, p_mut=0.3)
    a = ms.activity(types, alive)
    T = types.shape[0]
    assert a.final.sum() == alive.sum()
    for k, code in enumerate(a.codes.tolist()):
        n = np.array([_present(types, alive, t).get(code, 0) for t in range(T)])
        curve = np.cumsum(n)
        assert a.final[k] == curve[-1]
        rows = a.type_index == k
        assert a.cumulative[rows].tolist() == curve[n > 0].tolist()
        assert a.abundance[rows].tolist() == n[n > 0].tolist()
    assert a.count_above(5).tolist() == [int((np.array([c for c in _cum_upto(a, t)]) > 5).sum()) for t in range(T)]


def _cum_upto(a, t):
    """a_i(t) for every type alive at some census <= t (brute force)."""
    out = {}
    for s, k, c in zip(a.census.tolist(), a.type_index.tolist(), a.cumulative.tolist(), strict=True):
        if s <= t:
            out[k] = c
    return out.values()


# --- the neutral shadow ---------------------------------------------------------------------------------------


def _newborn(alive, born):
    nb = np.zeros_like(alive)
    nb[1:] = alive[1:] & (~alive[:-1] | (born[1:] != born[:-1]))
    return nb


def test_shadow_keeps_lives_and_deaths():
    types, alive, parent, born = _random_run(2)
    s, s_alive = ms.shadow(types, alive, born, seed=0)
    assert s.dtype == np.int64 and s.shape == types.shape
    assert np.array_equal(s_alive, alive)
    assert np.all(s[~alive] == -1) and np.all(s[alive] >= 0)
    nb = _newborn(alive, born)
    stay = alive[1:] & ~nb[1:]
    assert np.array_equal(s[1:][stay], s[:-1][stay])  # survivors keep their shadow type
    # founders relabelled one-to-one: same partition of census 0
    f = np.flatnonzero(alive[0])
    assert np.array_equal(types[0][f][:, None] == types[0][f][None, :], s[0][f][:, None] == s[0][f][None, :])


def _first_of_new_types(types, alive, born):
    """(T, M) bool: the first newborn (slot order) of each type no earlier census held."""
    nb = _newborn(alive, born)
    out = np.zeros_like(alive)
    seen = set(types[0][alive[0]].tolist())
    for t in range(1, types.shape[0]):
        for m in np.flatnonzero(nb[t]):
            if int(types[t, m]) not in seen:
                out[t, m] = True
                seen.add(int(types[t, m]))
        seen |= set(types[t][alive[t]].tolist())
    return out


def test_shadow_new_types_get_fresh_unique_ids_and_others_inherit():
    types, alive, parent, born = _random_run(5, T=40, p_mut=0.2)
    s, _ = ms.shadow(types, alive, born, seed=1)
    nb = _newborn(alive, born)
    new = _first_of_new_types(types, alive, born)
    assert new.sum() > 5
    seen = set(s[0][alive[0]].tolist())
    for t in range(1, types.shape[0]):
        fresh = set(s[t][new[t]].tolist())
        assert len(fresh) == new[t].sum()  # one new id per new real type
        assert not fresh & seen  # never used before
        assert not fresh & set(s[t][alive[t] & ~new[t]].tolist())
        heirs = nb[t] & ~new[t]
        assert set(s[t][heirs].tolist()) <= set(s[t - 1][alive[t - 1]].tolist())  # drawn from the previous census
        seen |= set(s[t][alive[t]].tolist())
    # the shadow ends with as many types as the real run
    assert len(set(s[alive].tolist())) == len(set(types[alive].tolist()))


def test_shadow_reversion_to_an_existing_type_is_no_new_component():
    # slot 1 is reborn at census 2 as type 5 (say a mutant of type 7 reverting), which slot 0 already holds
    types = np.array([[5, 7], [5, 7], [5, 5]], np.uint32)
    alive = np.ones((3, 2), bool)
    born = np.array([[0, 0], [0, 0], [0, 9]], np.int32)
    s, _ = ms.shadow(types, alive, born, seed=0)
    assert set(s[2].tolist()) <= set(s[1].tolist())  # inherited from the previous census, not a fresh id


def test_shadow_is_deterministic_per_seed_and_varies_with_it():
    types, alive, parent, born = _random_run(3)
    a, _ = ms.shadow(types, alive, born, seed=11)
    b, _ = ms.shadow(types, alive, born, seed=11)
    c, _ = ms.shadow(types, alive, born, seed=12)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shadow_without_mutations_has_no_new_types():
    types, alive, parent, born = _random_run(6, T=50, p_mut=0.0)
    assert np.array_equal(types[alive], parent[alive])
    s, _ = ms.shadow(types, alive, born, seed=0)
    founders = len(set(types[0][alive[0]].tolist()))
    assert set(s[alive].tolist()) <= set(range(founders))


def test_shadow_refills_after_extinction_with_fresh_types():
    types, alive = _census([[3, 3], [None, None], [3, 3]])
    born = np.array([[0, 0], [0, 0], [15, 15]], dtype=np.int32)
    s, _ = ms.shadow(types, alive, born, seed=0)
    assert s[0].tolist() == [0, 0] and s[2].tolist() == [1, 2]


# --- evolutionary activity against the shadow -----------------------------------------------------------------


def _sweep_run(T=60, M=20, A=100):
    """20 founders of 20 types; each census two slots die, non-A slots first, and are refilled by A: A sweeps."""
    types = np.zeros((T, M), dtype=np.uint32)
    born = np.zeros((T, M), dtype=np.int32)
    types[0] = A + np.arange(M)
    for t in range(1, T):
        types[t], born[t] = types[t - 1], born[t - 1]
        others = np.flatnonzero(types[t] != A)
        dying = others[:2] if others.size >= 2 else np.array([t % M, (t + 7) % M])
        types[t, dying], born[t, dying] = A, 10 * t
    return types, np.ones((T, M), dtype=bool), types.copy(), born


@pytest.mark.parametrize("seed", range(5))
def test_selected_type_is_significant_against_the_drifting_shadow(seed):
    types, alive, parent, born = _sweep_run()
    r = ms.evolutionary_activity(types, alive, born, seed=seed)
    real = ms.activity(types, alive)
    assert real.as_dict()[100] > r["threshold"]  # the selected type
    assert r["real_significant"] == 1
    assert r["real_significant"] >= r["shadow_significant"]
    assert r["real_types"] == r["shadow_types"] == 20
    assert r["ratio"] == r["real_significant"] / max(r["shadow_significant"], 1)
    assert r["real_cumulative"][-1] == r["real_significant"]
    assert r["shadow_cumulative"][-1] == r["shadow_significant"]
    assert np.all(np.diff(r["real_cumulative"]) >= 0) and np.all(np.diff(r["shadow_cumulative"]) >= 0)
    # the sweep concentrates activity: the real mean activity ends above the shadow's
    assert r["mean_activity_real"][-1] > r["mean_activity_shadow"][-1]


def test_threshold_is_the_shadow_quantile_and_result_is_json_friendly():
    types, alive, parent, born = _random_run(8, T=40, p_mut=0.2)
    r = ms.evolutionary_activity(types, alive, born, seed=4, quantile=0.8)
    s, s_alive = ms.shadow(types, alive, born, seed=4)
    sham, real = ms.activity(s, s_alive), ms.activity(types, alive)
    assert r["threshold"] == pytest.approx(float(np.quantile(sham.final, 0.8)))
    assert r["real_significant"] == int((real.final > r["threshold"]).sum())
    assert r["shadow_significant"] == int((sham.final > r["threshold"]).sum())
    assert r["real_cumulative"].tolist() == real.count_above(r["threshold"]).tolist()
    assert r["mean_activity_shadow"] == pytest.approx(sham.mean())
    T = types.shape[0]
    assert all(r[k].shape == (T,) for k in ("real_cumulative", "shadow_cumulative", "mean_activity_real",
                                            "mean_activity_shadow"))
    json.dumps({k: v for k, v in r.items() if not isinstance(v, np.ndarray)})
    with pytest.raises(ValueError):
        ms.evolutionary_activity(types, alive, born, seed=4, quantile=1.5)


def test_ratio_when_nothing_is_significant():
    # a static world: every type has the same activity, nothing lies strictly above the quantile
    types, alive = _census([[1, 2, 3, 4]] * 3)
    r = ms.evolutionary_activity(types, alive, np.zeros(types.shape, np.int32), seed=0)
    assert r["threshold"] == 3.0
    assert r["real_significant"] == r["shadow_significant"] == 0
    assert r["ratio"] == 0.0


# --- phylogeny summaries --------------------------------------------------------------------------------------


def _lineage_census():
    # type 0xa founds; 0xb arises from 0xa at census 1; 0xc arises at census 2 from 0xb; 0xd founds
    types, alive = _census([[0xA, 0xA, 0xD, None], [0xA, 0xB, 0xD, 0xB], [0xC, 0xB, None, 0xB]])
    parent = types.copy()
    parent[1, 1], parent[1, 3], parent[2, 0] = 0xA, 0xA, 0xB
    cells = np.array([[3, 4, 1, 0], [2, 6, 1, 5], [9, 7, 0, 8]], dtype=np.int32)
    return types, alive, parent, cells, np.array([100, 200, 300])


def test_lineage_table_order_and_fields():
    types, alive, parent, cells, ticks = _lineage_census()
    rows = ms.lineage_table(types, alive, parent, cells, ticks, top=10)
    # totals: b = 6+5+7+8 = 26, a = 3+4+2 = 9, c = 9, d = 2; a and c tie -> lower type first
    assert [r["type"] for r in rows] == ["0000000b", "0000000a", "0000000c", "0000000d"]
    b, a, c, d = rows
    assert b == {"type": "0000000b", "parent": "0000000a", "first_tick": 200, "last_tick": 300, "peak_cells": 15,
                 "total_cells": 26, "censuses_present": 2}
    assert a["parent"] is None and a["peak_cells"] == 7 and (a["first_tick"], a["last_tick"]) == (100, 200)
    assert c["parent"] == "0000000b" and c["censuses_present"] == 1
    assert d["total_cells"] == 2 and d["censuses_present"] == 2
    assert [r["type"] for r in ms.lineage_table(types, alive, parent, cells, ticks, top=2)] == ["0000000b",
                                                                                                 "0000000a"]
    json.dumps(rows)


def test_lineage_table_totals_are_ranked():
    types, alive, parent, _ = _random_run(9, p_mut=0.3)
    cells = np.random.default_rng(0).integers(1, 30, size=types.shape).astype(np.int32)
    rows = ms.lineage_table(types, alive, parent, cells, np.arange(types.shape[0]) * 10, top=6)
    totals = [r["total_cells"] for r in rows]
    assert len(rows) == 6 and totals == sorted(totals, reverse=True)
    for r in rows:
        x = int(r["type"], 16)
        assert r["total_cells"] == cells[alive & (types == x)].sum()
        assert r["censuses_present"] == (alive & (types == x)).any(axis=1).sum()


def test_type_counts_rows_sum_to_total_cells():
    types, alive, _, _ = _random_run(10, p_mut=0.3)
    cells = np.random.default_rng(1).integers(1, 30, size=types.shape).astype(np.int32)
    labels, counts = ms.type_counts(types, alive, cells, top=4)
    assert counts.shape == (types.shape[0], 5) and labels[-1] == "other" and len(labels) == 5
    assert np.array_equal(counts.sum(axis=1), np.where(alive, cells, 0).sum(axis=1))
    for j, lab in enumerate(labels[:-1]):
        assert np.array_equal(counts[:, j], np.where(alive & (types == int(lab, 16)), cells, 0).sum(axis=1))
    assert np.all(counts >= 0)
    totals = counts[:, :-1].sum(axis=0)
    assert np.all(np.diff(totals) <= 0)  # ranked by total cells
    top = ms.lineage_table(types, alive, types, cells, np.arange(types.shape[0]), top=4)
    assert labels[:-1] == [r["type"] for r in top]


def test_type_counts_with_fewer_types_than_top():
    types, alive, parent, cells, _ = _lineage_census()
    labels, counts = ms.type_counts(types, alive, cells, top=8)
    assert labels == ["0000000b", "0000000a", "0000000c", "0000000d", "other"]
    assert counts.tolist() == [[0, 7, 0, 1, 0], [11, 2, 0, 1, 0], [15, 0, 9, 0, 0]]
