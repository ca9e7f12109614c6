"""Environments and worlds: dynamics, reset, step, observation. No agents and no drawing live here.

- ``pointmaze``: OGBench's MuJoCo point mass in its maze layouts, with a BFS planner and evaluation tasks.
- ``oceanworld``: grid-genome soft swimmers in a 2-D fluid, simulated in JAX.
- ``gridworld``: small discrete MDPs (four rooms, an open room, an A/B/C chain) as arrays, with exact oracles.
- ``pointroom``: a point in a 2-D room with a walled gap, in JAX, with Monte Carlo future-state samplers.

Agents (``athanor.systems``) and datasets (``athanor.data``) import these modules, never the reverse; pictures
of them are drawn by ``athanor.viz`` from the plain arrays they expose (ARCHITECTURE.md).
"""
