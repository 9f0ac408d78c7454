"""InteractionReach: the distance within which senders affect receivers, by logistic fit."""

import matplotlib
import numpy as np
import pytest
import statsmodels.api as sm

from lucidvi.interpretation import InteractionReach
from lucidvi.interpretation._spatial import _interaction_reach
from lucidvi.interpretation._spatial._interaction_reach import fit_logistic

matplotlib.use("Agg")


def test_logistic_fit_is_the_maximum_likelihood():
    rng = np.random.default_rng(0)
    distance = rng.uniform(0, 30, 2000)
    affected = rng.random(2000) < 1 / (1 + np.exp(-(6.0 - 0.5 * distance)))
    (a,), (b,) = fit_logistic(distance, affected)
    reference = sm.Logit(affected.astype(float), sm.add_constant(distance)).fit(disp=0).params
    # the ridge (1e-6 per receiver on the standardised slope) moves the optimum by ~1e-6
    np.testing.assert_allclose([a, b], reference, rtol=1e-4)
    counts = rng.multinomial(2000, np.full(2000, 1 / 2000), size=3)
    a_boot, b_boot = fit_logistic(distance, affected, counts)
    repeated = np.repeat(np.arange(2000), counts[1])
    (a_one,), (b_one,) = fit_logistic(distance[repeated], affected[repeated])
    # the same likelihood; the ridge is scaled by the standardisation of the repeated data
    np.testing.assert_allclose([a_boot[1], b_boot[1]], [a_one, b_one], rtol=1e-4)


def test_separated_groups_give_a_reach_in_the_gap():
    distance = np.r_[np.linspace(0, 9, 50), np.linspace(11, 30, 50)]
    (a,), (b,) = fit_logistic(distance, distance < 10)
    assert np.isfinite([a, b]).all() and 9 < -a / b < 11


def test_a_failed_logistic_fit_gives_no_number_and_says_so(monkeypatch):
    distance = np.r_[np.linspace(0, 9, 50), np.linspace(11, 30, 50)]
    rng = np.random.default_rng(0)
    args = ("R", "S", distance, distance < 10, 20, 0.95, rng)
    assert _interaction_reach._fit_pair(*args)["status"] == "ok"
    monkeypatch.setattr(
        _interaction_reach, "fit_logistic", lambda *a: (np.array([np.nan]), np.array([np.nan]))
    )
    row = _interaction_reach._fit_pair(*args)
    assert row["status"] == "fit failed"
    assert np.isnan([row[k] for k in ("reach", "ci_low", "ci_high", "logit_slope")]).all()
    none = _interaction_reach._fit_pair("R", "S", distance, np.zeros(100, bool), 20, 0.95, rng)
    assert none["status"] == "no affected receiver" and np.isnan(none["reach"])


@pytest.fixture(scope="module")
def reach(planted_niche):
    return InteractionReach.compute(planted_niche, n_bootstrap=100, seed=0)


@pytest.mark.slow
def test_reach_of_the_planted_pair_is_its_length_scale(planted_niche, reach):
    row = reach.for_pair(sender_type="B", receiver_type="CD14+ Mono")
    assert row["n_affected"] > 0 and row["ci_low"] <= row["reach"] <= row["ci_high"]
    assert abs(row["reach"] / 15.0 - 1) <= 0.25  # the tolerance for a length scale
    kept = planted_niche.get_niche_calibration().query("kept")["cell_type"]
    assert set(reach.table["receiver_type"]) == set(kept)  # types without a niche: no reach


@pytest.mark.slow
def test_plot_and_errors(planted_niche, reach):
    ax = reach.plot_curves(n_pairs=3)
    assert len(ax.get_legend().get_texts()) == 3
    matplotlib.pyplot.close("all")
    with pytest.raises(ValueError, match="No row for 'NK' -> 'B'"):
        reach.for_pair(sender_type="NK", receiver_type="B")
    with pytest.raises(ValueError, match="confidence"):
        InteractionReach.compute(planted_niche, confidence=1.0)
    with pytest.raises(ValueError, match="unknown cell types"):
        InteractionReach.compute(planted_niche, receiver_type="T cell")
