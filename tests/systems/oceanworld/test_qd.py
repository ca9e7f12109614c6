"""Archive, novelty and search logic of the Oceanworld QD module, checked with a cheap stand-in world.

The stand-in genome is a point g in [0, 1]^2; its descriptor is (g0, 1.1 g1 - 0.1), which spans the archive's
bounds, its fitness a smooth bump, and g0 < 0.05 is "invalid" (no node (6, 6)). The search code only sees it
through ``qd.Ops``, the same interface as the real world.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from athanor.systems.oceanworld import qd

CALLS = {"evaluated": 0}


def _random(key):
    return {"g": jax.random.uniform(key, (2,))}


def _start(key):
    return {"g": 0.2 + 0.1 * jax.random.uniform(key, (2,))}


def _mutate(key, genome):
    return {"g": jnp.clip(genome["g"] + 0.05 * jax.random.normal(key, (2,)), 0.0, 1.0)}


def _evaluate(genomes):
    g = genomes["g"]  # (B, 2)
    desc = jnp.stack([g[:, 0], 1.1 * g[:, 1] - 0.1], axis=1)
    fitness = 10.0 - 40.0 * jnp.sum((g - jnp.array([0.7, 0.6])) ** 2, axis=1)
    return {"fitness": fitness, "descriptors": desc, "valid": g[:, 0] >= 0.05}


def _counting_evaluate(genomes):
    def count(n):
        CALLS["evaluated"] += int(n)

    jax.debug.callback(count, jnp.int32(genomes["g"].shape[0]))
    return _evaluate(genomes)


# every test counts evaluations through the host callback, and most share one config per algorithm, so each
# algorithm's scan compiles once for the whole file
OPS = qd.Ops(random=_random, start=_start, mutate=_mutate, evaluate=_counting_evaluate)


def _cfg(algorithm, **kw):
    base = dict(algorithm=algorithm, steps=6, inner_steps=2, batch=8, init_batch=12, pop=10, k=3,
                ns_generations=4, snapshots=3, qd_offset=-20.0)
    return qd.Config(**{**base, **kw})


def _desc_for_cell(i, j):
    """Descriptor at the centre of cell (i node-fraction bin, j bond-ratio bin)."""
    lo, hi = np.array(qd.DESC_LOW), np.array(qd.DESC_HIGH)
    return lo + (np.array([i, j]) + 0.5) / qd.GRID * (hi - lo)


def _insert(archive, ids, fitness, cells, valid=None):
    desc = jnp.asarray(np.stack([_desc_for_cell(*divmod(c, qd.GRID)) for c in cells]), jnp.float32)
    valid = jnp.ones(len(ids), bool) if valid is None else jnp.asarray(valid)
    genomes = {"id": jnp.asarray(ids, jnp.int32)}
    return qd.archive_insert(archive, genomes, jnp.asarray(fitness, jnp.float32), desc, valid)


def test_cell_index_bins_and_clips():
    desc = jnp.array([[0.0, -0.1], [0.999, 0.999], [1.5, 3.0], [-1.0, -1.0], [0.5, 0.45], [0.031, -0.1]])
    got = np.asarray(qd.cell_index(desc))
    # node bin floor(0.5 * 32) = 16, bond bin floor((0.45 + 0.1) / 1.1 * 32) = 16; 0.031 * 32 = 0.99 -> bin 0
    assert got.tolist() == [0, 1023, 1023, 0, 16 * 32 + 16, 0]


def test_insert_replaces_only_when_strictly_better():
    archive = qd.empty_archive({"id": jnp.zeros((), jnp.int32)})
    a, b, c = 5 * 32 + 7, 20 * 32 + 3, 31 * 32 + 31
    # cell a: a tie between ids 0 and 2 (the lower batch index wins) and a worse id 1; cell c only invalid
    archive = _insert(archive, [0, 1, 2, 3, 4], [1.0, 0.5, 1.0, 2.0, 9.0], [a, a, a, b, c],
                      valid=[True, True, True, True, False])
    fit, ids = np.asarray(archive.fitness), np.asarray(archive.genomes["id"])
    assert fit[a] == 1.0 and ids[a] == 0
    assert fit[b] == 2.0 and ids[b] == 3
    assert not np.isfinite(fit[c]) and np.isfinite(fit).sum() == 2
    # equal fitness never replaces; strictly better does; worse never does; duplicates in one batch keep the best
    archive = _insert(archive, [10, 11, 12, 13], [1.0, 1.5, 3.0, 2.5], [a, b, b, b])
    fit, ids = np.asarray(archive.fitness), np.asarray(archive.genomes["id"])
    assert fit[a] == 1.0 and ids[a] == 0
    assert fit[b] == 3.0 and ids[b] == 12
    np.testing.assert_allclose(np.asarray(archive.descriptors[b]), _desc_for_cell(20, 3), rtol=1e-6)


def test_non_finite_candidates_are_never_inserted():
    archive = qd.empty_archive({"id": jnp.zeros((), jnp.int32)})
    archive = _insert(archive, [0, 1], [np.nan, np.inf], [3, 4])
    assert not np.isfinite(np.asarray(archive.fitness)).any()


def test_metrics_closed_form():
    fitness = np.full(qd.CELLS, -np.inf, np.float32)
    fitness[[0, 100, 1023]] = [5.0, -30.0, 0.0]  # -30 lies below the offset and counts zero
    m = {k: float(v) for k, v in qd.archive_metrics(jnp.asarray(fitness), -20.0).items()}
    assert m["qd_score"] == pytest.approx((5 + 20) + 0 + (0 + 20))
    assert m["coverage"] == pytest.approx(3 / 1024)
    assert m["max_fitness"] == 5.0
    empty = qd.archive_metrics(jnp.full(qd.CELLS, -jnp.inf), -20.0)
    assert float(empty["qd_score"]) == 0.0 and float(empty["coverage"]) == 0.0
    assert float(empty["max_fitness"]) == -20.0


def test_novelty_of_points_on_a_line():
    x = jnp.array([0.0, 1.0, 3.0, 7.0, 2.0])
    desc = jnp.stack([x, jnp.zeros_like(x)], axis=1)
    valid = jnp.array([True, True, True, True, False])
    got = np.asarray(qd.novelty_scores(desc, valid, 2))
    # k = 2 nearest valid others: 0 -> {1, 3}; 1 -> {1, 2}; 3 -> {2, 3}; 7 -> {4, 6}; the invalid point is skipped
    np.testing.assert_allclose(got[:4], [2.0, 1.5, 2.5, 5.0], rtol=1e-6)
    assert got[4] == -np.inf
    # fewer than k others: the mean over those that exist
    np.testing.assert_allclose(np.asarray(qd.novelty_scores(desc[:2], valid[:2], 5)), [1.0, 1.0])


def test_novelty_selection_keeps_the_most_novel():
    pop = qd.Population(genomes={"id": jnp.array([0, 1, 2])}, descriptors=jnp.array([[0.0, 0], [0.1, 0], [0.2, 0]]),
                        fitness=jnp.zeros(3), valid=jnp.array([True, True, True]), novelty=jnp.zeros(3))
    kids = {"id": jnp.array([3, 4, 5])}
    desc = jnp.array([[0.9, 0.0], [0.15, 0.0], [5.0, 5.0]])
    valid = jnp.array([True, True, False])
    new = qd.select_population(pop, kids, jnp.ones(3), desc, valid, 1)
    # nearest-neighbour distances of the valid union {0, .1, .2, .9, .15}: .1, .05, .05, .7, .05 -> keep 3, 0, then
    # the lowest index of the .05 tie (member 1); the invalid far point never enters
    assert np.asarray(new.genomes["id"]).tolist() == [3, 0, 1]
    np.testing.assert_allclose(np.asarray(new.novelty), [0.7, 0.1, 0.05], rtol=1e-5)
    assert bool(new.valid.all())
    # with fewer valid candidates than slots, invalid ones fill the rest and stay flagged invalid
    few = qd.select_population(pop.replace(valid=jnp.zeros(3, bool)), kids, jnp.ones(3), desc, valid, 1)
    assert int(few.valid.sum()) == 2 and set(np.asarray(few.genomes["id"])[np.asarray(few.valid)]) == {3, 4}


def _run(cfg, key=0):
    state = qd.init_with(cfg, jax.random.PRNGKey(key), OPS)
    infos = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = qd.run_generations(state, cfg, OPS)
        infos.append({k: float(v) for k, v in info.items()})
    return state, infos


def test_mapelites_qd_score_and_every_elite_never_decrease():
    cfg = _cfg("mapelites")
    state = qd.init_with(cfg, jax.random.PRNGKey(3), OPS)
    prev, prev_fit = -1.0, np.asarray(state.archive.fitness)
    for _ in range(8):
        state, info = qd.run_generations(state, cfg, OPS)
        fit = np.asarray(state.archive.fitness)
        assert float(info["qd_score"]) >= prev
        assert np.all((fit >= prev_fit) | ~np.isfinite(prev_fit))
        prev, prev_fit = float(info["qd_score"]), fit
    assert float(info["coverage"]) > 12 / 1024  # it spread beyond the initial samples' cells


def test_info_is_the_last_generation_not_a_mean():
    cfg = _cfg("mapelites")
    state = qd.init_with(cfg, jax.random.PRNGKey(0), OPS)
    state, info = qd.run_generations(state, cfg, OPS)
    final = qd.archive_metrics(state.archive.fitness, cfg.qd_offset)
    for key in ("qd_score", "coverage", "max_fitness"):
        assert float(info[key]) == pytest.approx(float(final[key]))
    assert float(info["evaluations"]) == cfg.init_batch + cfg.inner_steps * cfg.batch
    assert float(info["loss"]) == -float(final["max_fitness"])


def test_greedy_never_decreases_parent_fitness():
    cfg = _cfg("greedy")
    state = qd.init_with(cfg, jax.random.PRNGKey(1), OPS)
    start = _start(jax.random.PRNGKey(cfg.start_seed))
    assert float(state.parent_fitness) >= float(_evaluate({"g": start["g"][None]})["fitness"][0])
    prev = float(state.parent_fitness)
    for _ in range(5):
        state, info = qd.run_generations(state, cfg, OPS)
        assert float(info["parent_fitness"]) >= prev
        prev = float(info["parent_fitness"])
        # the stored fitness is the parent's own
        assert prev == pytest.approx(float(_evaluate({"g": state.parent["g"][None]})["fitness"][0]), rel=1e-6)
    assert prev > float(_evaluate({"g": start["g"][None]})["fitness"][0])  # the bump is climbable
    assert 0 < int(state.last_improvement) <= int(state.generation) == 10


def test_greedy_start_genome_follows_start_seed():
    a = qd.init_with(_cfg("greedy", init_batch=1), jax.random.PRNGKey(0), OPS)
    b = qd.init_with(_cfg("greedy", init_batch=1, start_seed=1), jax.random.PRNGKey(0), OPS)
    np.testing.assert_allclose(np.asarray(a.parent["g"]), np.asarray(_start(jax.random.PRNGKey(0))["g"]))
    assert not np.allclose(np.asarray(a.parent["g"]), np.asarray(b.parent["g"]))


@pytest.mark.parametrize("algorithm", qd.ALGORITHMS)
def test_evaluation_counts_are_equal_and_true(algorithm):
    cfg = _cfg(algorithm)
    CALLS["evaluated"] = 0
    state, infos = _run(cfg)
    jax.effects_barrier()
    expected = cfg.init_batch + cfg.steps * cfg.batch
    assert int(state.evaluations) == expected == CALLS["evaluated"]
    assert infos[-1]["evaluations"] == expected
    assert qd.items_per_update(cfg) == cfg.batch  # one update is one generation of `batch` creatures


@pytest.mark.parametrize("algorithm", ["novelty", "ns_mapelites", "greedy"])
def test_the_state_carries_all_randomness_and_round_trips(algorithm):
    """Stopping after one call, serialising the state and continuing from the restored copy ends exactly where an
    uninterrupted search does (all the randomness is in the state's key); another key ends elsewhere."""
    cfg = _cfg(algorithm)
    s1, i1 = _run(cfg, key=7)
    s3, _ = _run(cfg, key=8)
    assert not np.array_equal(np.asarray(s1.archive.fitness), np.asarray(s3.archive.fitness))
    state = qd.init_with(cfg, jax.random.PRNGKey(7), OPS)
    state, first = qd.run_generations(state, cfg, OPS)
    state = serialization.from_bytes(state, serialization.to_bytes(state))
    infos = [{k: float(v) for k, v in first.items()}]
    for _ in range(cfg.steps // cfg.inner_steps - 1):
        state, info = qd.run_generations(state, cfg, OPS)
        infos.append({k: float(v) for k, v in info.items()})
    assert infos == i1
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b, equal_nan=True)), s1, state))


def test_ns_mapelites_switches_from_novelty_to_mapelites():
    cfg = _cfg("ns_mapelites")  # generations 1-4 novelty search (two calls), then MAP-Elites
    state = qd.init_with(cfg, jax.random.PRNGKey(2), OPS)
    pops, fits = [], []
    for _ in range(4):
        state, _ = qd.run_generations(state, cfg, OPS)
        pops.append(np.asarray(state.population.genomes["g"]))
        fits.append(np.asarray(state.archive.fitness))
    assert not np.array_equal(pops[0], pops[1])  # the population evolves during the novelty phase
    assert all(np.array_equal(pops[1], p) for p in pops[2:])  # and is left alone once MAP-Elites runs
    assert not np.array_equal(fits[1], fits[3])  # while the archive keeps improving
    # the novelty phase is the novelty algorithm itself: same key, same first four generations
    ncfg = _cfg("novelty")
    nov = qd.init_with(ncfg, jax.random.PRNGKey(2), OPS)
    for _ in range(2):
        nov, _ = qd.run_generations(nov, ncfg, OPS)
    np.testing.assert_array_equal(np.asarray(nov.population.genomes["g"]), pops[1])
    np.testing.assert_array_equal(np.asarray(nov.archive.fitness), fits[1])


def test_history_snapshots_the_archive_over_time():
    cfg = _cfg("mapelites")
    state = qd.init_with(cfg, jax.random.PRNGKey(0), OPS)
    first = np.asarray(state.archive.fitness)
    for _ in range(cfg.steps // cfg.inner_steps):
        state, _ = qd.run_generations(state, cfg, OPS)
        if int(state.generation) == 4:
            at4 = np.asarray(state.archive.fitness)
    h = np.asarray(state.history)
    assert qd._snapshot_times(cfg).tolist() == [0, 2, 4, 6]
    np.testing.assert_array_equal(h[0], first)
    np.testing.assert_array_equal(h[2], at4)
    np.testing.assert_array_equal(h[3], np.asarray(state.archive.fitness))


def test_size_statistics_and_elite_picks():
    fitness = np.full(qd.CELLS, -np.inf)
    small = [i * 32 + j for i in range(4) for j in range(3)]  # 12 cells with node fraction < 0.125
    large = [i * 32 + 5 for i in range(20, 28)]  # 8 cells with node fraction >= 0.625
    fitness[small] = 10.0 + np.arange(12)
    fitness[large] = 1.0
    fitness[large[0]] = 100.0  # the single best elite is large
    s = qd.size_statistics(fitness, top=10)
    assert s["top_small_fraction"] == pytest.approx(0.9)
    assert s["filled_small_fraction"] == pytest.approx(12 / 20)
    picks = dict(qd.pick_elites(fitness))
    assert divmod(picks["small/low"], 32)[0] < 4 and divmod(picks["large/high"], 32)[0] >= 20
    assert len(picks) == 9 and all(np.isfinite(fitness[i]) for i in picks.values())
    assert all(i is None for _, i in qd.pick_elites(np.full(qd.CELLS, -np.inf)))
