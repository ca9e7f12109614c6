"""Measures of open-ended evolution over the censuses of a Multicell World run: MODES, Bedau-Packard evolutionary
activity against a neutral shadow, and phylogeny summaries. Pure NumPy.

Input. Every ``census_every`` ticks the world records its organism table of M slots; T censuses give

    alive (T, M) bool            the slot holds a living organism
    types (T, M) uint32          the organism's genome type (a hash of its phenotype); ignored where not alive
    parent_type (T, M) uint32    its parent's type at birth (equal to ``types`` when the birth kept the type)
    born (T, M) int32            the tick it was born (a change of ``born`` means the slot was emptied and refilled)
    cells, complexity (T, M)     its cell count and the complexity (1..7) of its genome
    ticks (T,)                   the tick of each census.

A "type" is the unit of every measure (a species in the stacked plots, a component in Bedau-Packard, a lineage
in MODES). Types must be non-negative integers (the uint32 hashes, or the int64 ids of a shadow run). The
abundance n_i(t) of type i at census t is the number of living organisms of type i at t.

MODES (Dolson et al. 2019, "The MODES toolbox: measurements of open-ended dynamics in evolving systems").
MODES first filters out transient types with a persistence filter, then measures four hallmarks of open-ended
dynamics on what survives it: change, novelty, complexity and ecology. Dolson et al. filter lineages by whether
they leave descendants ``lag`` generations on; with only snapshots to go on, the filter here is

    P(t) = { i : n_i(t) > 0 and n_i(t - lag) > 0 },   for t >= lag,

i.e. a type is persistent at census t when it is alive at t and was already alive ``lag`` censuses earlier (it
need not have been alive at every census in between; lag counts censuses, not ticks). On P(t):

    change(t)     = |P(t) \\ P(t - 1)|            (first entry, t = lag: |P(lag)|, since nothing came before)
    novelty(t)    = |P(t) \\ (P(lag) u ... u P(t - 1))|    (first entry: |P(lag)|)
    complexity(t) = max complexity over organisms of types in P(t)    (0 when P(t) is empty)
    ecology(t)    = -sum_{i in P(t)} p_i log2 p_i,  p_i = n_i(t) / sum_{j in P(t)} n_j(t)   (bits; 0 for <= 1 type)

Counting the whole first set as change and novelty keeps the curves cumulative: sum_t novelty(t) is the number
of distinct types that were ever persistent. Because types are phenotype hashes, a type that went extinct can
re-evolve; it is then persistent again (change) but not new (novelty).

Evolutionary activity (Bedau & Packard 1992, "Measurement of evolutionary activity, teleology, and life";
Bedau, Snyder & Packard 1998, "A classification of long-term evolutionary dynamics"). Each type accumulates
activity while it is alive, weighted by its abundance:

    a_i(t) = sum_{s <= t} n_i(s)

(a type that dies out keeps its activity and resumes counting if it re-evolves). Activity alone rewards any type
that happens to be common, so it is compared with a neutral "shadow" run in which the same slots are born and
die at the same censuses and new types appear at the same births, but a newborn's type is inherited from a
uniformly random member of the previous census instead of from its real, selected parent (``shadow``). The
shadow's activities say how much activity chance alone produces; the threshold is

    a* = the ``quantile`` quantile (default 0.95) of the shadow's final per-type activities a_i(T - 1),

and a type of either run is significant when its final activity exceeds a* (strictly). The cumulative count
C(t) = |{ i : a_i(t) > a* }| (activity is non-decreasing, so this counts the types whose activity has crossed
a* by census t) is Bedau's cumulative evolutionary activity read as a number of types; the mean activity
A(t) = (1 / D(t)) sum_{i alive at t} a_i(t), D(t) the number of types alive at t, is his mean activity.
Unbounded evolutionary activity shows as a real C(t) that keeps growing above the shadow's.

Shadow choices (``shadow``): census 0's organisms are the founders; their types are relabelled one-to-one to
ids 0..K0-1 (ascending real hash), so the shadow starts with the real run's type structure. A slot holds a
newborn at census t >= 1 when it is alive at t and was dead at t - 1 or its ``born`` tick changed; a slot that
stays alive with the same ``born`` keeps its shadow type. The first newborn (in slot order) of a real type that
no earlier census held gets a fresh id (a counter), so the shadow gains a component exactly when the real run
shows a new type and both end with as many types; any other newborn copies the shadow type of an organism drawn
uniformly, with replacement, from the organisms alive at census t - 1 (so types are drawn in proportion to their
shadow abundance: neutral drift). When no organism was alive at t - 1 it gets a
fresh id as well. Births and deaths between two censuses that no census sees are invisible to both runs alike.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "Activity",
    "activity",
    "evolutionary_activity",
    "lineage_table",
    "modes",
    "persistent",
    "shadow",
    "type_counts",
]


# --- grouping the censuses by type ----------------------------------------------------------------------------


def _census_arrays(types, alive, *others):
    """Validated (types int64, alive bool, *others) with one (T, M) shape; dead slots of ``types`` set to -1."""
    alive = np.asarray(alive, dtype=bool)
    if alive.ndim != 2:
        raise ValueError(f"alive must be (T, M), got shape {alive.shape}")
    types = np.asarray(types)
    if types.shape != alive.shape:
        raise ValueError(f"types has shape {types.shape}, alive {alive.shape}")
    if not np.issubdtype(types.dtype, np.integer):
        raise ValueError(f"types must be integers, got {types.dtype}")
    codes = np.where(alive, types.astype(np.int64), -1)
    if np.any(codes[alive] < 0):
        raise ValueError("types of living organisms must be non-negative integers below 2**63")
    out = [codes, alive]
    for x in others:
        x = np.asarray(x)
        if x.shape != alive.shape:
            raise ValueError(f"census array has shape {x.shape}, alive {alive.shape}")
        out.append(x)
    return out


@dataclasses.dataclass(frozen=True)
class _Groups:
    """The living organisms of each census grouped by type: group g is (census t[g], type code[g]) with n[g]
    organisms. Groups are sorted by (t, code); ``k`` indexes ``codes``, the distinct types ascending."""

    t: np.ndarray
    code: np.ndarray
    n: np.ndarray
    k: np.ndarray
    codes: np.ndarray
    T: int
    _order: np.ndarray
    _starts: np.ndarray
    _keep: np.ndarray

    def reduce(self, values, ufunc=np.add) -> np.ndarray:
        """Per group, ``ufunc`` reduced over the group's organisms of a (T, M) array (np.add: sum, np.maximum)."""
        if self._starts.size == 0:
            return np.zeros(0, dtype=np.result_type(values, np.int64))
        v = np.asarray(values)
        if v.dtype.kind in "biu":
            v = v.astype(np.int64)
        v = np.take_along_axis(v, self._order, axis=1).ravel()
        return ufunc.reduceat(v, self._starts)[self._keep]


def _groups(codes: np.ndarray, alive: np.ndarray) -> _Groups:
    T, M = alive.shape
    order = np.argsort(codes, axis=1, kind="stable")
    xs = np.take_along_axis(codes, order, axis=1)
    first = np.ones((T, M), dtype=bool)
    first[:, 1:] = xs[:, 1:] != xs[:, :-1]
    starts = np.flatnonzero(first)  # every run of one value within a row; the dead (-1) runs come first
    flat = xs.ravel()
    lengths = np.diff(starts, append=T * M)
    keep = flat[starts] >= 0
    code = flat[starts[keep]]
    distinct = np.unique(code)
    k = np.searchsorted(distinct, code).astype(np.int64)
    return _Groups(t=starts[keep] // max(M, 1), code=code, n=lengths[keep].astype(np.int64), k=k,
                   codes=distinct, T=T, _order=order, _starts=starts, _keep=keep)


def _in_sorted(x: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """x in sorted_keys, elementwise."""
    if sorted_keys.size == 0:
        return np.zeros(x.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_keys, x), sorted_keys.size - 1)
    return sorted_keys[i] == x


def _persistent_mask(g: _Groups, lag: int) -> np.ndarray:
    """Per group: its type is persistent at its census (alive there and ``lag`` censuses before)."""
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    K = max(g.codes.size, 1)
    key = g.t * K + g.k  # ascending, since groups are sorted by (t, code) and k is monotone in code
    return (g.t >= lag) & _in_sorted(key - lag * K, key)


def _hex(code) -> str:
    return f"{int(code):08x}"


# --- MODES -----------------------------------------------------------------------------------------------------


def persistent(types, alive, lag: int) -> list[dict[int, int]]:
    """The persistent types of each census and their abundances (MODES persistence filter on snapshots).

    Entry j of the list is census t = lag + j (j = 0 .. T - lag - 1); it maps each type i in

        P(t) = { i : n_i(t) > 0 and n_i(t - lag) > 0 }

    to its abundance n_i(t), the number of organisms of type i alive at census t. lag = 0 keeps every type that
    is alive; lag >= T gives an empty list.
    """
    codes, alive = _census_arrays(types, alive)
    g = _groups(codes, alive)
    keep = _persistent_mask(g, lag)
    out: list[dict[int, int]] = [{} for _ in range(max(g.T - lag, 0))]
    for t, c, n in zip(g.t[keep].tolist(), g.code[keep].tolist(), g.n[keep].tolist(), strict=True):
        out[t - lag][c] = n
    return out


def modes(types, alive, complexity, lag: int, ticks=None) -> dict[str, np.ndarray]:
    """MODES change, novelty, complexity and ecology over censuses t = lag .. T - 1 (see the module docstring).

    With P(t) the persistent types at census t (``persistent``), and t0 = lag the first census measured:

        richness(t)   = |P(t)|
        change(t)     = |P(t) \\ P(t - 1)|  for t > t0,   change(t0) = |P(t0)|
        novelty(t)    = |P(t) \\ (P(t0) u ... u P(t - 1))|  for t > t0,   novelty(t0) = |P(t0)|
        complexity(t) = max { complexity[t, m] : alive[t, m] and types[t, m] in P(t) }   (0 if P(t) is empty)
        ecology(t)    = -sum_{i in P(t)} p_i log2 p_i,   p_i = n_i(t) / sum_{j in P(t)} n_j(t)   (0 if |P(t)| <= 1)

    Returns arrays of length max(T - lag, 0): "census" (the census indices t, int64), "change", "novelty",
    "richness", "complexity" (int64), "ecology" (float64, bits), and "ticks" (ticks[t]) when ``ticks`` is given.
    """
    codes, alive, complexity = _census_arrays(types, alive, complexity)
    g = _groups(codes, alive)
    T = g.T
    keep = _persistent_mask(g, lag)
    n = max(T - lag, 0)
    K = max(g.codes.size, 1)
    t, k, ab = g.t[keep], g.k[keep], g.n[keep]
    key = t * K + k  # the persistent (census, type) pairs, ascending
    census = np.arange(lag, lag + n, dtype=np.int64)

    richness = np.bincount(t - lag, minlength=n).astype(np.int64)
    was = _in_sorted(key - K, key) & (t > lag)
    change = np.bincount(t[~was] - lag, minlength=n).astype(np.int64)
    _, first = np.unique(k, return_index=True)  # pairs are sorted by census, so this is each type's first census
    novelty = np.bincount(t[first] - lag, minlength=n).astype(np.int64)

    cmax = g.reduce(complexity, np.maximum)[keep]
    comp = np.zeros(n, dtype=np.int64)
    np.maximum.at(comp, t - lag, cmax)

    total = np.bincount(t - lag, weights=ab, minlength=n)
    p = ab / np.where(total[t - lag] > 0, total[t - lag], 1.0)
    ecology = np.bincount(t - lag, weights=-p * np.log2(p), minlength=n) if t.size else np.zeros(n)
    ecology = np.maximum(ecology, 0.0)  # -0.0 for a single type

    out = {"census": census, "change": change, "novelty": novelty, "richness": richness, "complexity": comp,
           "ecology": ecology.astype(np.float64)}
    if ticks is not None:
        ticks = np.asarray(ticks)
        if ticks.shape != (T,):
            raise ValueError(f"ticks must have shape ({T},), got {ticks.shape}")
        out["ticks"] = ticks[census]
    return out


# --- Bedau-Packard evolutionary activity ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Activity:
    """Component activity a_i(t) = sum_{s <= t} n_i(s) of every type (Bedau & Packard 1992), stored sparsely.

    codes (K,)        the distinct types ever alive, ascending
    final (K,)        a_i(T - 1), each type's final activity (int64)
    census (P,)       for each (census, type) pair with n_i(t) > 0, sorted by (census, type): the census t,
    type_index (P,)   the type's index into ``codes``,
    abundance (P,)    n_i(t),
    cumulative (P,)   a_i(t)
    n_censuses        T
    """

    codes: np.ndarray
    final: np.ndarray
    census: np.ndarray
    type_index: np.ndarray
    abundance: np.ndarray
    cumulative: np.ndarray
    n_censuses: int

    def as_dict(self) -> dict[int, int]:
        """{type: final activity}."""
        return dict(zip(self.codes.tolist(), self.final.tolist(), strict=True))

    def diversity(self) -> np.ndarray:
        """(T,) D(t), the number of types alive at each census."""
        return np.bincount(self.census, minlength=self.n_censuses).astype(np.int64)

    def total(self) -> np.ndarray:
        """(T,) sum over types alive at t of a_i(t)."""
        return np.bincount(self.census, weights=self.cumulative, minlength=self.n_censuses)

    def mean(self) -> np.ndarray:
        """(T,) mean activity A(t) = total(t) / D(t) of the types alive at t (0 where none is)."""
        d = self.diversity()
        return np.where(d > 0, self.total() / np.maximum(d, 1), 0.0)

    def count_above(self, threshold: float) -> np.ndarray:
        """(T,) C(t) = |{ i : a_i(t) > threshold }|, the number of types whose activity has exceeded the threshold
        by census t (activity never decreases, so a type that crossed it and died out still counts)."""
        over = self.cumulative > threshold
        crossed = np.full(self.codes.size, self.n_censuses, dtype=np.int64)
        np.minimum.at(crossed, self.type_index[over], self.census[over])
        hits = np.bincount(crossed[crossed < self.n_censuses], minlength=self.n_censuses)
        return np.cumsum(hits).astype(np.int64)


def activity(types, alive) -> Activity:
    """Abundance-weighted component activity of every type: a_i(t) = sum_{s <= t} n_i(s), n_i(s) the number of
    organisms of type i alive at census s. Returns an ``Activity`` (final per-type activities plus the per-census
    values of the types alive at each census, from which ``mean``, ``diversity`` and ``count_above`` derive)."""
    codes, alive = _census_arrays(types, alive)
    g = _groups(codes, alive)
    by_type = np.lexsort((g.t, g.k))  # (type, census) order
    n = g.n[by_type]
    cs = np.cumsum(n)
    start = np.ones(n.size, dtype=bool)
    start[1:] = g.k[by_type][1:] != g.k[by_type][:-1]
    base = np.maximum.accumulate(np.where(start, cs - n, 0))  # cumulative count before each type's first entry
    cumulative = np.empty(n.size, dtype=np.int64)
    cumulative[by_type] = cs - base
    final = np.bincount(g.k, weights=g.n, minlength=g.codes.size).astype(np.int64)
    return Activity(codes=g.codes, final=final, census=g.t.astype(np.int64), type_index=g.k, abundance=g.n,
                    cumulative=cumulative, n_censuses=g.T)


def shadow(types, alive, born, seed) -> tuple[np.ndarray, np.ndarray]:
    """The neutral shadow of a run (Bedau & Packard 1992): same births, deaths and mutations, no selection.

    With S the shadow types (int64, a separate id space from the real hashes):

        S[0, m]  = rank of types[0, m] among census 0's distinct types (founders, relabelled one-to-one)
        for t >= 1 and alive[t, m]:
            survivor  (alive[t - 1, m] and born[t, m] == born[t - 1, m]):  S[t, m] = S[t - 1, m]
            the first newborn (in slot order) of a type no earlier census held:  S[t, m] = next fresh id
            every other newborn:                                          S[t, m] = S[t - 1, m'],
                  m' uniform (with replacement) over the slots alive at t - 1 (a fresh id if there are none)
        S[t, m] = -1 where not alive[t, m].

    So the shadow gains a new component exactly when the real run shows a new type, and the two runs end with
    the same number of types. (Counting a birth as new whenever its type differs from its parent's would also
    count reversions to existing types, and give the shadow more components than the real run, whose activity
    would then be spread thinner.)

    Fresh ids count up from the number of founder types, in census then slot order. The draws use
    ``numpy.random.default_rng(seed)``, so the shadow is a deterministic function of the census and the seed.
    Returns (S (T, M) int64, a copy of alive (T, M) bool).
    """
    codes, alive, born = _census_arrays(types, alive, born)
    rng = np.random.default_rng(seed)
    T, M = alive.shape
    out = np.full((T, M), -1, dtype=np.int64)
    if T == 0:
        return out, alive.copy()
    founders = alive[0]
    distinct, inv = np.unique(codes[0, founders], return_inverse=True)
    out[0, founders] = inv
    fresh = distinct.size
    seen = set(codes[0, founders].tolist())
    for t in range(1, T):
        prev = out[t - 1]
        survivor = alive[t] & alive[t - 1] & (born[t] == born[t - 1])
        out[t, survivor] = prev[survivor]
        newborn = alive[t] & ~survivor
        first_of_new = np.zeros(M, bool)
        for m in np.flatnonzero(newborn):
            if codes[t, m] not in seen:
                first_of_new[m] = True
                seen.add(codes[t, m])
        seen.update(codes[t, alive[t]].tolist())
        mutant = np.flatnonzero(first_of_new)
        heir = np.flatnonzero(newborn & ~first_of_new)
        pool = np.flatnonzero(alive[t - 1])
        if pool.size == 0:
            mutant, heir = np.flatnonzero(newborn), heir[:0]
        out[t, mutant] = np.arange(fresh, fresh + mutant.size)
        fresh += mutant.size
        if heir.size:
            out[t, heir] = prev[pool[rng.integers(0, pool.size, size=heir.size)]]
    return out, alive.copy()


def evolutionary_activity(types, alive, born, seed, quantile: float = 0.95) -> dict:
    """Bedau-Packard evolutionary activity of a run against its neutral shadow (``shadow``, ``activity``).

        a*                  = np.quantile(shadow final activities, quantile)   (linear interpolation; 0 if none)
        real_significant    = |{ real types i : a_i(T - 1) > a* }|,  shadow_significant likewise in the shadow
        ratio               = real_significant / max(shadow_significant, 1)
        real_cumulative(t)  = |{ real types i : a_i(t) > a* }|     (Bedau's cumulative activity count; T values)
        mean_activity_real(t) = (1 / D(t)) sum_{i alive at t} a_i(t)   (0 where D(t) = 0)

    Returns a dict: "threshold" (float), "quantile" (float), "real_significant", "shadow_significant",
    "real_types", "shadow_types" (the numbers of distinct types ever alive; ints), "ratio" (float), and the (T,)
    arrays "real_cumulative", "shadow_cumulative" (int64), "mean_activity_real", "mean_activity_shadow" (float64).
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    real = activity(types, alive)
    s_types, s_alive = shadow(types, alive, born, seed)
    sham = activity(s_types, s_alive)
    threshold = float(np.quantile(sham.final, quantile)) if sham.final.size else 0.0
    real_sig = int(np.count_nonzero(real.final > threshold))
    sham_sig = int(np.count_nonzero(sham.final > threshold))
    return {
        "threshold": threshold,
        "quantile": float(quantile),
        "real_significant": real_sig,
        "shadow_significant": sham_sig,
        "ratio": real_sig / max(sham_sig, 1),
        "real_types": int(real.codes.size),
        "shadow_types": int(sham.codes.size),
        "real_cumulative": real.count_above(threshold),
        "shadow_cumulative": sham.count_above(threshold),
        "mean_activity_real": real.mean(),
        "mean_activity_shadow": sham.mean(),
    }


# --- phylogeny and species plots --------------------------------------------------------------------------------


def _ranked_by_cells(g: _Groups, cells) -> tuple[np.ndarray, np.ndarray]:
    """(per-group cell sums, type indices ranked by total cells over all censuses, descending; ties: lower type)."""
    gcells = g.reduce(cells, np.add)
    total = np.bincount(g.k, weights=gcells, minlength=g.codes.size)
    return gcells, np.lexsort((g.codes, -total))


def lineage_table(types, alive, parent_type, cells, ticks, top: int = 10) -> list[dict]:
    """A phylogeny summary: the ``top`` types by total cells c_i = sum_t sum_{m alive, of type i} cells[t, m],
    in that order (ties: lower type first). One dict per type:

        type             the type as 8 hex digits
        parent           the parent_type (hex) of the first organism of this type, in census then slot order, whose
                         parent_type differs from it (the birth that made the type); None when no census saw one
                         (a founder, or a type whose first members all died between censuses)
        first_tick       ticks[first census where the type is alive]
        last_tick        ticks[last census where the type is alive]
        peak_cells       max over censuses t of the type's total cells at t
        total_cells      c_i (the ranking key)
        censuses_present the number of censuses where the type is alive
    """
    codes, alive, parent_type, cells = _census_arrays(types, alive, parent_type, cells)
    ticks = np.asarray(ticks)
    if ticks.shape != (alive.shape[0],):
        raise ValueError(f"ticks must have shape ({alive.shape[0]},), got {ticks.shape}")
    g = _groups(codes, alive)
    gcells, ranked = _ranked_by_cells(g, cells)
    K = g.codes.size
    first = np.full(K, g.T, dtype=np.int64)
    last = np.full(K, -1, dtype=np.int64)
    peak = np.zeros(K, dtype=np.int64)
    np.minimum.at(first, g.k, g.t)
    np.maximum.at(last, g.k, g.t)
    np.maximum.at(peak, g.k, gcells)
    present = np.bincount(g.k, minlength=K)
    total = np.bincount(g.k, weights=gcells, minlength=K)
    parents = parent_type.astype(np.int64)
    rows = []
    for i in ranked[: max(top, 0)].tolist():
        c = int(g.codes[i])
        made = np.flatnonzero((codes == c) & (parents != c))  # row-major: census, then slot
        rows.append({
            "type": _hex(c),
            "parent": _hex(parents.flat[made[0]]) if made.size else None,
            "first_tick": int(ticks[first[i]]),
            "last_tick": int(ticks[last[i]]),
            "peak_cells": int(peak[i]),
            "total_cells": int(total[i]),
            "censuses_present": int(present[i]),
        })
    return rows


def type_counts(types, alive, cells, top: int = 8) -> tuple[list[str], np.ndarray]:
    """Cells per type over time for a stacked species plot.

    The columns are the k = min(top, number of types) types with the most cells summed over all censuses (as in
    ``lineage_table``), then "other":

        counts[t, j] = sum_{m alive at t, types[t, m] = type j} cells[t, m]     (j < k)
        counts[t, k] = sum_{m alive at t} cells[t, m] - sum_{j < k} counts[t, j]

    so each row sums to the census's total cells. Returns (labels: k hex strings then "other",
    counts (T, k + 1) int64).
    """
    codes, alive, cells = _census_arrays(types, alive, cells)
    g = _groups(codes, alive)
    gcells, ranked = _ranked_by_cells(g, cells)
    chosen = ranked[: max(top, 0)]
    k = chosen.size
    column = np.full(g.codes.size, k, dtype=np.int64)
    column[chosen] = np.arange(k)
    counts = np.bincount(g.t * (k + 1) + column[g.k], weights=gcells, minlength=g.T * (k + 1))
    labels = [_hex(c) for c in g.codes[chosen].tolist()] + ["other"]
    return labels, counts.reshape(g.T, k + 1).astype(np.int64)
