"""The experiments' claim logic on hand-made final metrics: each claim flips with the numbers it reads.

The records repeat the same numbers on three seeds (a zero-width interval, so each check is decided); the rule's
intervals themselves are tested in tests/core/test_claims.py."""

from pathlib import Path

from athanor.core.experiment import RunRecord, RunSpec
from athanor.experiments import generative, vae_kl

COLOURS = ("Red", "RedBlue", "BlueRed", "Blue", "Green")
DIGITS = ("0A", "0B", "1", "2", "3", "4")


SEEDS = (0, 1, 2)


def _gen_record(label, seed=0, **final):
    return RunRecord(RunSpec(label, label), seed, Path("/nonexistent"), final)


def _set(records, label, **final):
    for r in records:
        if r.spec.label == label:
            r.final.update(final)
    return records


def _post_like(seeds=SEEDS):
    return [r for seed in seeds for r in _one_seed(seed)]


def _one_seed(seed):
    """Numbers shaped like the post's findings."""
    base = {d: 5.0 for d in DIGITS}
    vae = {"tv": 0.05, "bins_covered": 30.0, "mean_error": 5.0,
           **{f"error_digit_{d}": e for d, e in {**base, "3": 9.0, "4": 12.0}.items()}}
    diff_colours = {"Red": 3.0, "RedBlue": 20.0, "BlueRed": 18.0, "Blue": 4.0, "Green": 3.0}
    return [
        _gen_record("oracle", seed, tv=0.01, bins_covered=30.0, mean_error=0.0),
        _gen_record("vae", seed, **vae),
        _gen_record("gan", seed, tv=0.8, bins_covered=3.0, mean_error=20.0),
        _gen_record("gan-mbd", seed, tv=0.6, bins_covered=12.0, mean_error=60.0),
        _gen_record("autoregressive", seed, tv=0.4, bins_covered=25.0, mean_error=60.0),
        _gen_record("diffusion", seed, tv=0.1, bins_covered=30.0, mean_error=10.0,
                    **{f"error_colour_{c}": v for c, v in diff_colours.items()}),
        _gen_record("flow", seed, tv=0.1, bins_covered=30.0, mean_error=1.0),
    ]


def _verdicts(claims):
    return {c.id: c.verdict for c in claims}


def test_generative_claims_follow_the_numbers():
    records = _post_like()
    v = _verdicts(generative._claims(records, "full"))
    assert set(v.values()) == {"reproduced"}, v
    assert set(_verdicts(generative._claims(records, "tiny")).values()) == {"inconclusive"}

    flipped = _post_like()
    _set(flipped, "gan", bins_covered=28.0)  # GAN does not collapse; MBD no longer adds coverage
    _set(flipped, "vae", tv=0.5)  # VAE is no longer best
    _set(flipped, "diffusion", error_colour_RedBlue=0.0, error_colour_BlueRed=0.0, error_colour_Red=0.0,
         error_colour_Blue=0.0, error_colour_Green=0.0)  # a tie is not a finding
    v = _verdicts(generative._claims(flipped, "full"))
    assert v["gan_mode_collapse"] == "not_reproduced"
    assert v["mbd_coverage_up_quality_down"] == "not_reproduced"
    assert v["vae_best_frequencies"] == "not_reproduced"
    assert v["diffusion_error_in_mixed_colours"] == "not_reproduced"
    assert v["diffusion_covers_all"] == "reproduced"


def test_missing_metric_is_inconclusive_not_a_verdict():
    records = _post_like()
    del records[1].final["error_digit_4"]  # the VAE of seed 0 drew no 4s
    v = _verdicts(generative._claims(records, "full"))
    assert v["vae_rare_digits_worse"] == "inconclusive"
    records = [r for r in _post_like() if r.spec.label != "diffusion"]  # the diffusion run failed
    v = _verdicts(generative._claims(records, "full"))
    assert v["diffusion_covers_all"] == "inconclusive"


def test_one_seed_leans_but_decides_nothing():
    claims = generative._claims(_post_like(seeds=(0,)), "full")
    assert {c.verdict for c in claims} == {"inconclusive"}
    assert {c.leans for c in claims} == {"reproduced"}


def test_mbd_claim_reads_the_interval_of_paired_differences():
    records = _post_like()
    for seed, bins in zip(SEEDS, (5.0, 9.0, 4.0), strict=True):  # MBD beats GAN (3 bins) by 2, 6 and 1 bins
        _set([r for r in records if r.seed == seed], "gan-mbd", bins_covered=bins)
    c = {c.id: c for c in generative._claims(records, "full")}["mbd_coverage_up_quality_down"]
    # differences 2, 6, 1: mean 3, s = 2.646, half-width 4.303 * 2.646 / sqrt(3) = 6.57 -> straddles 0
    assert c.verdict == "inconclusive" and c.leans == "reproduced"
    assert c.checks[0]["per_seed"] == [2.0, 6.0, 1.0] and c.checks[0]["ci"][0] < 0 < c.checks[0]["ci"][1]


def test_vae_kl_claims():
    def rec(label, **final):
        return [RunRecord(RunSpec("vae", label), seed, Path("/nonexistent"), dict(final)) for seed in SEEDS]

    good = rec("vae-element", kl=2.0, recon_mse=0.02, z_var=1.0, z_mean_abs=0.05) + \
        rec("vae-batch", kl=60.0, recon_mse=0.005, z_var=0.9, z_mean_abs=0.05)
    v = _verdicts(vae_kl.analyse(good, "quick").claims)
    assert v == {"analytic_equals_monte_carlo": "reproduced", "batch_kl_matches_prior_in_aggregate": "reproduced",
                 "element_kl_costs_reconstruction": "reproduced"}
    bad = rec("vae-element", kl=2.0, recon_mse=0.002, z_var=1.0, z_mean_abs=0.05) + \
        rec("vae-batch", kl=3.0, recon_mse=0.005, z_var=0.1, z_mean_abs=0.05)
    v = _verdicts(vae_kl.analyse(bad, "quick").claims)
    assert v["batch_kl_matches_prior_in_aggregate"] == "not_reproduced"
    assert v["element_kl_costs_reconstruction"] == "not_reproduced"


def test_monte_carlo_grid_agrees_with_closed_form():
    grid = vae_kl.kl_grid(200_000, seed=1)
    assert abs(grid["z"]).max() < 5.0
    assert float(grid["exact"][3, 3]) == 0.0  # mu=0, sigma=1
    assert (grid["exact"] >= 0).all()


def test_run_figures_take_the_lowest_seed_that_has_the_figure(tmp_path):
    import numpy as np

    from athanor.core.artifact_io import write_artifacts
    from athanor.core.experiment import run_figures

    spec = RunSpec("vae", "a")
    records = [RunRecord(spec, seed, tmp_path / f"a_s{seed}", {"x": 1.0}) for seed in range(3)]
    records.append(RunRecord(RunSpec("vae", "b"), 0, tmp_path / "b_s0", {}))  # failed: never shown
    for seed, shade in ((1, 40), (2, 200)):  # seed 0 kept only its records
        write_artifacts(tmp_path / f"a_s{seed}", {"pic": np.full((4, 4, 3), shade, np.uint8)})
    write_artifacts(tmp_path / "b_s0", {"pic": np.zeros((4, 4, 3), np.uint8)})
    (tmp_path / "a_s0").mkdir()
    out = run_figures(records, {"shown": ("a", "pic"), "failed": ("b", "pic"), "absent": ("a", "nothing")})
    assert set(out) == {"shown"} and int(np.asarray(out["shown"]).mean()) == 40
