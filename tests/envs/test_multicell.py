"""Multicell World's rules against their definitions: conservation, determinism, births only into empty spaces,
pooling within organisms only, killers harm only other organisms, and the decision tree on all 16 pheromones."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.envs import multicell as mc

RULES = mc.Rules(height=12, width=10, slots=64, founders=12)


def _world(org, rx=None, energy=None, chem=None, rules=RULES, key=0):
    """A world with the given grids (org -1 = empty), genomes of a single leaf per organism."""
    w = mc.init(rules, jax.random.PRNGKey(key))
    org = jnp.asarray(org, jnp.int32)
    rx = jnp.zeros_like(org) if rx is None else jnp.asarray(rx, jnp.int32)
    energy = jnp.where(org >= 0, 1.0, 0.0) if energy is None else jnp.asarray(energy, jnp.float32)
    chem = w.chem if chem is None else jnp.asarray(chem, jnp.float32)
    alive = jnp.zeros(rules.slots, bool).at[jnp.where(org >= 0, org, rules.slots).reshape(-1)].set(True, mode="drop")
    return w.replace(org=org, rx=rx, energy=energy, chem=chem, alive=alive, pher=jnp.zeros_like(org))


def _reference_tree(bit, react, mask, p, n=0):
    """The tree walk written recursively (the definition in envs/multicell.py)."""
    if bit[n] < 0:
        return int(react[n]), int(mask[n])
    return _reference_tree(bit, react, mask, p, 2 * n + 1 + ((p >> int(bit[n])) & 1))


def _random_genomes(key, n, rules=RULES):
    g = mc.single_leaf(n, jax.random.randint(key, (n,), 0, rules.n_reactions))
    keys = jax.random.split(key, n)
    bit, react, mask = jax.vmap(lambda b, r, m, k: mc.mutate_one(b, r, m, k, rules.n_reactions, 12))(
        g.bit, g.react, g.mask, keys)
    return mc.Genomes(bit=bit, react=react, mask=mask)


def test_default_chemistry_releases_potential_and_rejects_perpetual_motion():
    chem = RULES.chemistry
    assert np.allclose(chem.energy, (chem.inputs - chem.outputs) @ chem.potential)
    assert (chem.energy > 0).all()
    assert chem.inputs[0, 1] == 1 and chem.inputs[0, 2] == 1  # the first reaction eats the supplied pair
    with pytest.raises(ValueError, match="release no energy"):
        mc.parse_chemistry("01+02>03+04, 03+04>01+02", mc.DEFAULT_POTENTIALS)
    with pytest.raises(ValueError, match="form"):
        mc.parse_chemistry("01+09>03", mc.DEFAULT_POTENTIALS)
    with pytest.raises(ValueError, match="8"):
        mc.parse_chemistry("01+02>03", "1,2,3")


def test_tree_tables_match_the_recursive_walk_on_all_16_pheromones():
    g = _random_genomes(jax.random.PRNGKey(3), 40)
    react_t, mask_t = (np.asarray(a) for a in mc.tables(g))
    bit, react, mask = (np.asarray(a) for a in (g.bit, g.react, g.mask))
    assert (bit >= 0).sum() > 40  # the trees really branch
    for i in range(40):
        for p in range(16):
            assert (react_t[i, p], mask_t[i, p]) == _reference_tree(bit[i], react[i], mask[i], p)


def test_hand_built_tree():
    bit = -np.ones(mc.N_NODES, np.int32)
    react = np.zeros(mc.N_NODES, np.int32)
    mask = np.zeros(mc.N_NODES, np.int32)
    bit[0] = 2  # root: pheromone bit 2
    react[1], mask[1] = 1, 0b0011  # bit 2 clear -> brown, children flip bits 0 and 1
    bit[2] = 0  # bit 2 set -> split on bit 0
    react[5], react[6] = 2, RULES.n_reactions  # -> blue, or killer
    g = mc.Genomes(*(jnp.asarray(a)[None] for a in (bit, react, mask)))
    react_t, mask_t = (np.asarray(a)[0] for a in mc.tables(g))
    for p in range(16):
        want = 1 if not p & 4 else (2 if not p & 1 else RULES.n_reactions)
        assert react_t[p] == want
        assert mask_t[p] == (0b0011 if not p & 4 else 0)


def test_orbit_type_and_complexity():
    # a single leaf with mask 1: cells alternate pheromones 0 and 1, both one reaction
    g = mc.single_leaf(1, jnp.array([0]), jnp.array([1]))
    reach = np.asarray(mc.orbit(mc.tables(g)[1]))[0]
    assert reach.tolist() == [p in (0, 1) for p in range(16)]
    h, cx, kinds = mc.phenotype(g)
    assert int(kinds[0]) == 0b1
    assert int(cx[0]) == 1
    # changing what an unreachable pheromone would do leaves the type unchanged; a reachable one changes it
    split = np.asarray(g.bit).copy()
    split[0, 0] = 3  # root splits on bit 3: pheromones 8..15 (unreachable) go right
    react = np.asarray(g.react).copy()
    react[0, 2] = 4
    g2 = mc.Genomes(jnp.asarray(split), jnp.asarray(react), g.mask)
    assert int(mc.phenotype(g2)[0][0]) == int(h[0])
    split[0, 0] = 0  # now pheromone 1 (reachable) goes right: a second reaction in the organism
    g3 = mc.Genomes(jnp.asarray(split), jnp.asarray(react), g.mask)
    h3, cx3, kinds3 = mc.phenotype(g3)
    assert int(kinds3[0]) == 0b10001  # green and orange
    assert int(h3[0]) != int(h[0]) and int(cx3[0]) == 2


def test_mutation_keeps_trees_well_formed():
    g = _random_genomes(jax.random.PRNGKey(1), 200)
    bit, react, mask = (np.asarray(a) for a in (g.bit, g.react, g.mask))
    depth = np.floor(np.log2(np.arange(mc.N_NODES) + 1)).astype(int)
    assert (bit[:, depth == mc.DEPTH] == -1).all()  # the deepest level holds only leaves
    assert ((bit >= -1) & (bit < 4)).all()
    assert ((react >= 0) & (react <= RULES.n_reactions)).all()
    assert ((mask >= 0) & (mask < 16)).all()
    assert len({tuple(r) for r in np.asarray(mc.tables(g)[0])}) > 20  # mutation makes many phenotypes


def test_pooling_averages_within_each_organism_only():
    rng = np.random.default_rng(0)
    org = -np.ones((12, 10), np.int32)
    org[2:5, 2:5] = 0
    org[6:8, 1:9] = 1
    org[10, 0] = 2
    energy = np.where(org >= 0, rng.uniform(0, 10, org.shape), 0.0)
    chem = rng.uniform(0, 5, (12, 10, mc.N_CHEM))
    w = mc.pool(_world(org, energy=energy, chem=chem), RULES.slots)
    e, c = np.asarray(w.energy), np.asarray(w.chem)
    for k in range(3):
        sel = org == k
        assert np.allclose(e[sel], energy[sel].mean(), rtol=1e-5)
        assert np.allclose(c[sel], chem[sel].mean(axis=0), rtol=1e-5)
    assert np.array_equal(c[org < 0], chem[org < 0].astype(np.float32))  # empty spaces untouched
    assert np.isclose(c.sum(), chem.sum(), rtol=1e-5) and np.isclose(e.sum(), energy.sum(), rtol=1e-5)


def test_a_killer_kills_only_other_organisms_cells():
    n_r = RULES.n_reactions
    org = -np.ones((12, 10), np.int32)
    rx = np.zeros((12, 10), np.int32)
    org[5, 5], rx[5, 5] = 0, n_r  # the killer
    org[4, 5] = 0  # its own cell above
    org[6, 5] = 1  # a foreign cell below
    org[5, 4] = 1  # a foreign cell to the left; (5, 6) stays empty
    org[5, 7] = 1  # a foreign cell two spaces away
    w = mc.kill(_world(org, rx), n_r, 1.0, jax.random.PRNGKey(0))
    after = np.asarray(w.org)
    assert after[6, 5] == -1 and after[5, 4] == -1  # foreign neighbours die
    assert after[4, 5] == 0 and after[5, 5] == 0  # its own organism is spared
    assert after[5, 7] == 1 and after[5, 6] == -1  # out of reach, and empty space stays empty
    assert np.array_equal(np.asarray(mc.kill(_world(org, rx), n_r, 0.0, jax.random.PRNGKey(0)).org), org)


@pytest.mark.parametrize("key", [0, 1, 2])
def test_births_only_into_empty_neighbours_one_per_space(key):
    rng = np.random.default_rng(key)
    org = np.where(rng.uniform(size=(12, 10)) < 0.5, rng.integers(0, 6, (12, 10)), -1).astype(np.int32)
    energy = np.where(org >= 0, rng.uniform(0, 16, org.shape), 0.0).astype(np.float32)
    rules = mc.Rules(height=12, width=10, slots=64, founders=12, new_organism=0.7, max_cells=10**6)
    w0 = _world(org, energy=energy, rules=rules, key=key)
    w1 = mc.birth(w0, rules, jax.random.PRNGKey(key))
    o1, e1 = np.asarray(w1.org), np.asarray(w1.energy)
    occupied = org >= 0
    assert np.array_equal(o1[occupied], org[occupied])  # no occupied space changes hands
    born = (~occupied) & (o1 >= 0)
    assert born.sum() > 3
    ready = occupied & (energy >= rules.birth_energy)
    paid = np.isclose(e1, energy - rules.birth_cost) & ready
    assert paid.sum() == born.sum()  # one parent pays per child
    assert (e1[born] == rules.child_energy).all()
    for y, x in zip(*np.nonzero(born), strict=True):
        nbrs = [(y + dy, x + dx) for dy, dx in mc.DIRS if 0 <= y + dy < 12 and 0 <= x + dx < 10]
        assert any(paid[p] for p in nbrs)  # a paying parent next to every child
        same = any(paid[p] and org[p] == o1[y, x] for p in nbrs)
        founded = o1[y, x] not in set(org[occupied].tolist())
        assert same or founded  # a child joins its parent's organism or founds a new one
    new_slots = set(o1[born].tolist()) - set(org[occupied].tolist())
    assert new_slots and all(np.asarray(w1.alive)[s] and int(w1.born[s]) == int(w0.tick) for s in new_slots)


def test_conservation_of_chemicals_and_energy_over_a_run():
    rules = mc.Rules(height=16, width=16, slots=128, founders=24)
    w0 = mc.init(rules, jax.random.PRNGKey(5))
    w = jax.jit(lambda w: mc.run(w, rules, 300))(w0)
    assert int(np.asarray(w.org >= 0).sum()) > 0 and float(w.released) > 0
    total0, total = np.asarray(w0.chem.sum(axis=(0, 1)), np.float64), np.asarray(w.chem.sum(axis=(0, 1)), np.float64)
    expected = total0 + np.asarray(w.supplied) + np.asarray(w.produced) - np.asarray(w.consumed) - np.asarray(
        w.decayed)
    assert np.allclose(total, expected, rtol=1e-4, atol=1e-2)
    assert np.allclose(total, total0 + np.asarray(w.balance, np.float64), rtol=1e-5, atol=1e-3)
    u = rules.chemistry.potential.astype(np.float64)
    # the energy released is the chemical potential the reactions consumed
    potential_drop = (np.asarray(w.consumed) - np.asarray(w.produced)) @ u
    assert np.isclose(float(w.released), potential_drop, rtol=1e-4)


def test_supply_is_more_near_the_bottom():
    prof = mc.supply_profile(RULES)
    assert prof[-1] == pytest.approx(RULES.supply)
    assert (np.diff(prof) > 0).all()


def test_deterministic_for_a_key():
    rules = mc.Rules(height=16, width=16, slots=128, founders=24)
    f = jax.jit(lambda w: mc.run(w, rules, 60))
    a = f(mc.init(rules, jax.random.PRNGKey(7)))
    b = f(mc.init(rules, jax.random.PRNGKey(7)))
    c = f(mc.init(rules, jax.random.PRNGKey(8)))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    assert not np.array_equal(np.asarray(a.org), np.asarray(c.org))
