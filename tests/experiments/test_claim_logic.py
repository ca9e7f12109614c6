"""The experiments' claim logic on hand-made final metrics: each claim flips with the numbers it reads."""

from pathlib import Path

from athanor.core.experiment import RunRecord, RunSpec
from athanor.experiments import generative, vae_kl

COLOURS = ("Red", "RedBlue", "BlueRed", "Blue", "Green")
DIGITS = ("0A", "0B", "1", "2", "3", "4")


def _gen_record(label, **final):
    return RunRecord(RunSpec(label, label), 0, Path("/nonexistent"), final)


def _post_like():
    """Numbers shaped like the post's findings."""
    base = {d: 5.0 for d in DIGITS}
    vae = {"tv": 0.05, "bins_covered": 30.0, "mean_error": 5.0,
           **{f"error_digit_{d}": e for d, e in {**base, "3": 9.0, "4": 12.0}.items()}}
    diff_colours = {"Red": 3.0, "RedBlue": 20.0, "BlueRed": 18.0, "Blue": 4.0, "Green": 3.0}
    return [
        _gen_record("oracle", tv=0.01, bins_covered=30.0, mean_error=0.0),
        _gen_record("vae", **vae),
        _gen_record("gan", tv=0.8, bins_covered=3.0, mean_error=20.0),
        _gen_record("gan-mbd", tv=0.6, bins_covered=12.0, mean_error=60.0),
        _gen_record("autoregressive", tv=0.4, bins_covered=25.0, mean_error=60.0),
        _gen_record("diffusion", tv=0.1, bins_covered=30.0, mean_error=10.0,
                    **{f"error_colour_{c}": v for c, v in diff_colours.items()}),
        _gen_record("flow", tv=0.1, bins_covered=30.0, mean_error=1.0),
    ]


def _verdicts(claims):
    return {c.id: c.verdict for c in claims}


def test_generative_claims_follow_the_numbers():
    records = _post_like()
    v = _verdicts(generative._claims(records, "full"))
    assert set(v.values()) == {"reproduced"}, v
    assert set(_verdicts(generative._claims(records, "tiny")).values()) == {"inconclusive"}

    flipped = _post_like()
    flipped[2].final["bins_covered"] = 28.0  # GAN does not collapse; MBD no longer adds coverage
    flipped[1].final["tv"] = 0.5  # VAE is no longer best
    flipped[5].final.update({"error_colour_RedBlue": 0.0, "error_colour_BlueRed": 0.0, "error_colour_Red": 0.0,
                             "error_colour_Blue": 0.0, "error_colour_Green": 0.0})  # a tie is not a finding
    v = _verdicts(generative._claims(flipped, "full"))
    assert v["gan_mode_collapse"] == "not_reproduced"
    assert v["mbd_coverage_up_quality_down"] == "not_reproduced"
    assert v["vae_best_frequencies"] == "not_reproduced"
    assert v["diffusion_error_in_mixed_colours"] == "not_reproduced"
    assert v["diffusion_covers_all"] == "reproduced"


def test_missing_metric_is_inconclusive_not_a_verdict():
    records = _post_like()
    del records[1].final["error_digit_4"]  # the VAE drew no 4s
    v = _verdicts(generative._claims(records, "full"))
    assert v["vae_rare_digits_worse"] == "inconclusive"
    records = [r for r in _post_like() if r.spec.label != "diffusion"]  # the diffusion run failed
    v = _verdicts(generative._claims(records, "full"))
    assert v["diffusion_covers_all"] == "inconclusive"


def test_vae_kl_claims():
    def rec(label, **final):
        return RunRecord(RunSpec("vae", label), 0, Path("/nonexistent"), final)

    good = [rec("vae-element", kl=2.0, recon_mse=0.02, z_var=1.0, z_mean_abs=0.05),
            rec("vae-batch", kl=60.0, recon_mse=0.005, z_var=0.9, z_mean_abs=0.05)]
    v = _verdicts(vae_kl.analyse(good, "quick").claims)
    assert v == {"analytic_equals_monte_carlo": "reproduced", "batch_kl_matches_prior_in_aggregate": "reproduced",
                 "element_kl_costs_reconstruction": "reproduced"}
    bad = [rec("vae-element", kl=2.0, recon_mse=0.002, z_var=1.0, z_mean_abs=0.05),
           rec("vae-batch", kl=3.0, recon_mse=0.005, z_var=0.1, z_mean_abs=0.05)]
    v = _verdicts(vae_kl.analyse(bad, "quick").claims)
    assert v["batch_kl_matches_prior_in_aggregate"] == "not_reproduced"
    assert v["element_kl_costs_reconstruction"] == "not_reproduced"


def test_monte_carlo_grid_agrees_with_closed_form():
    grid = vae_kl.kl_grid(200_000, seed=1)
    assert abs(grid["z"]).max() < 5.0
    assert float(grid["exact"][3, 3]) == 0.0  # mu=0, sigma=1
    assert (grid["exact"] >= 0).all()
