"""`multicell`: multicellular organisms in a grid chemistry evolve chains of reactions, specialised cells and
killers, and keep producing new genome types faster than a neutral shadow of the same run.

Source: "Open-Endedness 3: Multicell World". One run of ``systems/multicell/world.py`` per seed (the world's rules:
``envs/multicell.py``). The post shows videos and describes what appears; the claims below turn each description
into a measured number, with thresholds fixed here before any full run. Each check is a per-seed quantity judged
by its 95% t interval over seeds (``core/claims.py``: reproduced when the interval clears the threshold,
inconclusive when it straddles it; one seed is always inconclusive). The measures are defined in the system's
docstring.

- supply_dominance: "In the beginning, cells consist only of green reactions, living mostly near the bottom."
  The founders run random reactions, so this has to be won: over the first 10% of the run, green's share of the
  cells in the bottom quarter > 0.5, and the share of all cells in the bottom half > 0.5.
- waste_eaters_more_efficient: "A species with both green and brown cells is twice as energy-efficient, since the
  output of green is used to power the brown reaction." Energy released per unit of supplied chemical consumed,
  organisms running green and a waste reaction over green-only organisms (late in the run), > 1.5 ("twice",
  with room for organisms that also leave part of their waste to others).
- specialists_persist: "diverse combinations of multi-cell reactions" that stay: late in the run, the share of
  cells in organisms whose cells run two or more different reactions > 0.05, and one genome type lives as such
  an organism for more than 20% of the run's censuses.
- killers_persist: "the first species develops Killer cells ... The world eventually settles into species
  containing a few reaction cells along with sporadic Killer cells." Killer cells are present in more than half
  of the late censuses, and one genome type carries killer cells for more than 10% of the censuses.
- activity_exceeds_shadow: Bedau-Packard evolutionary activity: genome types whose cumulative abundance exceeds
  the 95th percentile of the neutral shadow's (same births and deaths, random inheritance), real over shadow,
  > 1 (the shadow has about 5% above by construction; selection keeps more types abundant for longer).
"""

from __future__ import annotations

from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, paired, run_figures

SUMMARY = "multicellular organisms in a grid chemistry: reaction chains, specialised cells, killers, open-endedness"
SOURCE = "Open-Endedness 3: Multicell World"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "world_final"

GREEN_MIN, BOTTOM_MIN = 0.5, 0.5
EFFICIENCY_MIN = 1.5
MULTI_SHARE_MIN, MULTI_SPAN_MIN = 0.05, 0.2
KILLER_PRESENT_MIN, KILLER_SPAN_MIN = 0.5, 0.1
ACTIVITY_MIN = 1.0

FIGURES = ("world_final", "reactions", "species", "chemicals", "modes", "activity", "lineage", "world")


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec("multicell", "world")]


def analyse(records, scale: str) -> Analysis:
    def check(name, key, op, threshold):
        return Check(name, paired(records, lambda f: f["world"][key]), op, threshold)

    claims = [
        claim("supply_dominance", "First-reaction (green) organisms dominate near the supply at the bottom early.",
              [check("green share of bottom-quarter cells, first 10%", "early_bottom_green", ">", GREEN_MIN),
               check("share of cells in the bottom half, first 10%", "early_bottom_share", ">", BOTTOM_MIN)], scale),
        claim("waste_eaters_more_efficient",
              "Organisms that also run a waste-consuming reaction are more energy-efficient than green-only ones.",
              [check("energy per supplied chemical, mixed / green-only", "efficiency_ratio", ">", EFFICIENCY_MIN)],
              scale),
        claim("specialists_persist", "Organisms whose cells run different reactions arise and persist.",
              [check("share of cells in multi-reaction organisms (late)", "multi_share_late", ">", MULTI_SHARE_MIN),
               check("longest-lived multi-reaction type, share of censuses", "multi_type_span", ">", MULTI_SPAN_MIN)],
              scale),
        claim("killers_persist", "Killer cells arise and persist in some lineages.",
              [check("share of late censuses with killer cells", "killer_present_late", ">", KILLER_PRESENT_MIN),
               check("longest-lived killer type, share of censuses", "killer_type_span", ">", KILLER_SPAN_MIN)],
              scale),
        claim("activity_exceeds_shadow", "Evolutionary activity exceeds the neutral shadow run's.",
              [check("types above the shadow's 95th-percentile activity, real / shadow", "activity_ratio", ">",
                     ACTIVITY_MIN)], scale),
    ]
    return Analysis(claims=claims, artifacts=run_figures(records, {f: ("world", f) for f in FIGURES}))
