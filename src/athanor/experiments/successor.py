"""`successor`: successor representations from the closed form to zero-shot RL.

Source: "Successor Representations Explained" (the SR as TD learning of discounted occupancy; gamma models;
forward-backward representations, Touati & Ollivier).

Runs per seed:
- ``sr-four-rooms``, ``sr-abc``: the tabular SR of the uniformly random policy learned by TD (``sr-tabular``) in the
  four-rooms gridworld and on the post's A/B/C chain, against the closed form (1 - gamma)(I - gamma P)^-1 P;
- ``gamma-0``, ``gamma-0.9``: the gamma model (``gamma-model``, a mixture density network trained by generative
  TD) in the point room, at gamma = 0 (the one-step model) and 0.9, against Monte Carlo rollouts;
- ``fb``: forward-backward representations (``fb``, d = 50 as in the reference) learned from reward-free offline
  transitions in four rooms, evaluated zero-shot on 104 goal rewards and 16 dense rewards;
- ``fb-d128``: the same with d = 128, more than the 104 states (the representation can then be exact);
- ``goal-dqn``: the supervised comparison, a goal-conditioned DQN trained on the same transitions with the goal
  rewards (``fb-goal-dqn``);
- ``fb-maze``: FB with a DDPG actor on the point maze's reward-free offline-rl dataset (``fb-maze``), sent zero-shot
  to every free cell of the medium maze;
- ``iql-task1`` .. ``iql-task5``: its supervised comparison, IQL (awr head) trained on the same data with the sparse
  reward of each of the maze's five OGBench task goals in turn, at the `offline-rl` experiment's scale. Both are
  evaluated from uniformly drawn start cells (maze2d's protocol).

Claims (thresholds fixed here before any full run; judged over seeds by the rule in ``core/claims.py``):
- td_sr_converges: the TD estimate of the SR in four rooms ends within 0.02 of the closed form in mean total
  variation per row (2% of each row's probability mass), and its value of the goal reward within 5% of the largest
  exact value: m_tv < 0.02, v_max_err / max V < 0.05 (max V is the value of the goal reward under the random
  policy, computed exactly).
- sr_value_equals_value_iteration: the value of the goal reward computed as M* r / (1 - gamma), with M* the closed
  form for the optimal policy, equals value iteration's V*: vi_max_err < 1e-6 in four rooms and on the chain.
- fb_zero_shot_near_oracle: FB's zero-shot return, as a fraction of the optimal return (mean over start states),
  averaged over the goal rewards and over the dense rewards, is at least 0.85 (the fraction of supervised offline
  RL that "Does Zero-Shot RL Exist?" reports for FB).
- fb_zero_shot_near_supervised: FB's return ratio on the goal rewards is at least 0.85 of the goal-conditioned
  DQN's, which was trained with those rewards: ratio(fb) / ratio(goal-dqn) >= 0.85.
- fb_maze_near_iql: on the point maze, FB's zero-shot success rate at the five task goals, averaged over them, is at
  least 0.85 of IQL's averaged over its five per-goal runs: mean_k success_task{k}(fb-maze) / mean_k
  success(iql-task{k}) >= 0.85.
"""

from __future__ import annotations

import numpy as np

from athanor.core.artifacts import Heatmap
from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, curves_over_seeds, mean, metric, paired, run_figures
from athanor.experiments.offline_rl import SCALE_OVERRIDES as IQL_SCALE

SUMMARY = "successor representations: TD against the closed form, gamma models, forward-backward zero-shot RL"
SOURCE = "Successor Representations Explained"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "zero_shot"

FB_FRACTION = 0.85  # "Does Zero-Shot RL Exist?": FB at ~85% of supervised offline RL
FB_RUNS = (("fb", "fb", {}), ("fb-d128", "fb", {"dim": 128}), ("goal-dqn", "fb-goal-dqn", {}))
MAZE_TASKS = (1, 2, 3, 4, 5)  # the medium maze's OGBench tasks; IQL is trained once per task goal


def runs(scale: str) -> list[RunSpec]:
    out = [RunSpec("sr-tabular", "sr-four-rooms", {}), RunSpec("sr-tabular", "sr-abc", {"env": "abc"}),
           RunSpec("gamma-model", "gamma-0", {"gamma": 0.0}), RunSpec("gamma-model", "gamma-0.9", {"gamma": 0.9})]
    out += [RunSpec(system, label, over) for label, system, over in FB_RUNS] + [RunSpec("fb-maze", "fb-maze", {})]
    return out + [RunSpec("iql", f"iql-task{k}", {"task_id": k, **IQL_SCALE[scale]}) for k in MAZE_TASKS]


def _maze_ratio(f) -> float:
    """Mean FB zero-shot success over the task goals over mean IQL success over its per-goal runs (one seed)."""
    fb_mean = np.mean([f["fb-maze"][f"success_task{k}"] for k in MAZE_TASKS])
    return float(fb_mean / np.mean([f[f"iql-task{k}"]["success"] for k in MAZE_TASKS]))


def _claims(records, scale: str) -> list:
    return [
        claim("td_sr_converges",
              "TD learning of the SR converges to the closed form (1 - gamma)(I - gamma P)^-1 P, and so does the "
              "value computed from it.",
              [Check("m_tv(sr-four-rooms)", metric(records, "sr-four-rooms", "m_tv"), "<", 0.02),
               Check("v_max_err / max V (sr-four-rooms)",
                     paired(records, lambda f: f["sr-four-rooms"]["v_max_err"] / f["sr-four-rooms"]["v_max"]),
                     "<", 0.05)], scale),
        claim("sr_value_equals_value_iteration",
              "The value computed as M r / (1 - gamma) from the optimal policy's SR equals value iteration's.",
              [Check(f"vi_max_err({label})", metric(records, label, "vi_max_err"), "<", 1e-6)
               for label in ("sr-four-rooms", "sr-abc")], scale),
        claim("fb_zero_shot_near_oracle",
              f"FB, trained without rewards, reaches at least {FB_FRACTION:g} of the optimal return zero-shot on "
              "goal rewards and on dense rewards.",
              [Check(f"{group}_return_ratio(fb)", metric(records, "fb", f"{group}_return_ratio"), ">=", FB_FRACTION)
               for group in ("goal", "dense")], scale),
        claim("fb_zero_shot_near_supervised",
              f"FB's zero-shot return on the goal rewards is at least {FB_FRACTION:g} of a goal-conditioned DQN "
              "trained with those rewards.",
              [Check("goal_return_ratio(fb) / goal_return_ratio(goal-dqn)",
                     paired(records, lambda f: f["fb"]["goal_return_ratio"] / f["goal-dqn"]["goal_return_ratio"]),
                     ">=", FB_FRACTION)], scale),
        claim("fb_maze_near_iql",
              f"On the point maze, FB's zero-shot success at the five task goals is at least {FB_FRACTION:g} of IQL's "
              "trained with each goal's reward.",
              [Check("mean success_task(fb-maze) / mean success(iql-task)", paired(records, _maze_ratio), ">=",
                     FB_FRACTION)], scale),
    ]


def analyse(records, scale: str) -> Analysis:
    from athanor.viz.figures import bar_compare, curves

    keys = ("goal_return_ratio", "goal_score", "goal_worst_ratio", "goal_reach", "dense_return_ratio", "dense_score")
    labels = [label for label, _, _ in FB_RUNS]
    table = np.array([[mean(records, label, k) for k in keys] for label in labels])  # NaN: goal-dqn has no dense
    bars = [(f"{label}: {group}", metric(records, label, f"{group}_return_ratio")) for label in labels
            for group in ("goal", "dense")]
    bars = [(name, v) for name, v in bars if np.isfinite(v).any()]
    arts = {
        "zero_shot": bar_compare([name for name, _ in bars], [np.mean(v) for _, v in bars],
                                 [np.std(v, ddof=1) if len(v) > 1 else np.nan for _, v in bars],
                                 "return / optimal return (mean over rewards; bars: seeds' mean and std)",
                                 ylabel="return ratio"),
        "zero_shot_table": Heatmap(table, labels, list(keys), "zero-shot (fb) and supervised (goal-dqn) returns, "
                                   "mean over seeds", fmt=".3f", vmin=0.0, vmax=1.0),
    }
    maze = [(f"task {k}: {name}", metric(records, label, key)) for k in MAZE_TASKS
            for name, label, key in (("fb", "fb-maze", f"success_task{k}"), ("iql", f"iql-task{k}", "success"))]
    arts["maze_tasks"] = bar_compare([name for name, _ in maze], [np.mean(v) for _, v in maze],
                                     [np.std(v, ddof=1) if len(v) > 1 else np.nan for _, v in maze],
                                     "point maze: FB zero-shot vs IQL trained per goal (success from random starts; "
                                     "bars: seeds' mean and std)", ylabel="success rate")
    td = curves_over_seeds(records, {"m_tv": "eval", "v_max_err": "eval"}, labels=["sr-four-rooms", "sr-abc"])
    if td:
        arts["td_convergence"] = curves(td, ["m_tv", "v_max_err"], "TD estimate against the closed form (mean over "
                                        "seeds)", series="label", xlabel="TD updates")
    learning = curves_over_seeds(records, {"goal_return_ratio": "eval", "dense_return_ratio": "eval"},
                                 labels=labels)
    if learning:
        arts["zero_shot_curves"] = curves(learning, ["goal_return_ratio", "dense_return_ratio"],
                                          "return / optimal return during training (mean over seeds)",
                                          series="label", xlabel="updates", log_loss=False)
    arts.update(run_figures(records, {
        "sr_by_gamma": ("sr-four-rooms", "sr_by_gamma"), "sr_td_vs_closed": ("sr-four-rooms", "sr_td_vs_closed"),
        "sr_abc": ("sr-abc", "sr_by_gamma"), "gamma_model_samples": ("gamma-0.9", "future_samples"),
        "gamma_model_one_step": ("gamma-0", "future_samples"), "gamma_model_value": ("gamma-0.9", "value_map"),
        "fb_goal_map": ("fb", "goal_ratio_map"), "fb_values": ("fb", "values"),
        "goal_dqn_goal_map": ("goal-dqn", "goal_ratio_map"), "fb_maze_success": ("fb-maze", "success_map")}))
    notes = [f"gamma model against Monte Carlo (energy distance; the Monte Carlo floor in brackets): gamma 0: "
             f"{mean(records, 'gamma-0', 'energy'):.4f} ({mean(records, 'gamma-0', 'energy_mc'):.4f}); gamma 0.9: "
             f"{mean(records, 'gamma-0.9', 'energy'):.4f} ({mean(records, 'gamma-0.9', 'energy_mc'):.4f}); value "
             f"relative error at gamma 0.9: {mean(records, 'gamma-0.9', 'v_rel_error'):.3f}."]
    return Analysis(claims=_claims(records, scale), artifacts=arts, notes=notes)
