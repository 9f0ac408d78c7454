import numpy as np
import pytest

from lucidvi.metrics import MutualInformation, mutual_information


def gaussian_pair(n, d, total_mi, seed, mix=True, extra_a=0):
    """Jointly Gaussian (a, b) with d canonical pairs of equal correlation rho and known MI.

    -d/2 log(1 - rho^2) = total_mi. ``extra_a`` independent noise columns are appended to a
    (MI unchanged). With ``mix``, each side goes through a random invertible linear map (MI
    unchanged).
    """
    rng = np.random.default_rng(seed)
    rho = np.sqrt(1.0 - np.exp(-2.0 * total_mi / d))
    x = rng.normal(size=(n, d))
    y = rho * x + np.sqrt(1.0 - rho**2) * rng.normal(size=(n, d))
    x = np.hstack([x, rng.normal(size=(n, extra_a))])
    if mix:
        x = x @ rng.normal(size=(x.shape[1], x.shape[1]))
        y = y @ rng.normal(size=(d, d))
    return x, y


@pytest.mark.parametrize(("d", "truth"), [(2, 0.5), (4, 2.0), (16, 4.0)])
def test_gaussian_recovers_known_mi_after_linear_mixing(d, truth):
    a, b = gaussian_pair(20_000, d, truth, seed=d)
    res = mutual_information(a, b, "gaussian", n_bootstrap=0)
    # Sampling sd of the plug-in estimate is about sqrt(sum rho^2 / n) < 0.03 nats here, its
    # bias about d^2 / (2n) <= 0.0064 nats, and the Ledoit-Wolf factor 1 - delta with
    # delta ~ 2d / n costs < 1%; 10% or 0.1 nats leaves > 3 sd of room.
    # Measured: 0.509 vs 0.5, 2.011 vs 2.0, 3.968 vs 4.0.
    assert isinstance(res, MutualInformation)
    assert res.method == "gaussian" and res.n == 20_000 and res.upper_bound is None
    assert abs(res.estimate - truth) <= max(0.1, 0.1 * truth)


def test_gaussian_shrinks_to_zero_when_dimension_exceeds_cells():
    # d_a + d_b = 80 > n = 50: sample canonical correlations are all 1 (infinite plug-in MI);
    # shrinkage keeps the estimate finite and within [0, truth].
    a, b = gaussian_pair(50, 40, 2.0, seed=0)
    res = mutual_information(a, b, "gaussian", n_bootstrap=5)
    assert np.isfinite(res.estimate) and 0.0 <= res.estimate <= 2.0


@pytest.mark.parametrize("truth", [0.5, 1.0, 2.0])
def test_ksg_invariant_to_monotone_transforms_where_gaussian_fails(truth):
    x, y = gaussian_pair(5_000, 1, truth, seed=1, mix=False)
    a, b = np.exp(x), y**3  # monotone: MI unchanged
    ksg = mutual_information(a, b, "ksg", k=3, n_bootstrap=0).estimate
    gauss = mutual_information(a, b, "gaussian", n_bootstrap=0).estimate
    # KSG at k=3, n=5000 in 2-d: sd ~ 0.02 nats and small bias (measured over 3 seeds:
    # 0.46-0.49, 0.98-1.00, 1.96-1.97 for truth 0.5, 1, 2), so 10% / 0.1 nats is > 3 sd.
    assert abs(ksg - truth) <= max(0.1, 0.1 * truth)
    # The Gaussian formula sees only the linear part of the dependence: measured 0.19, 0.30,
    # 0.51 for truth 0.5, 1, 2 -- far worse than KSG.
    assert abs(gauss - truth) > 2 * abs(ksg - truth)
    assert gauss < truth - 0.25


def test_ksg_biased_down_in_high_dimension():
    # Known KSG limitation: at fixed MI, the bias grows with the joint dimension. Measured at
    # n=2000, MI=2 nats: d=1 -> 2.02; d=8 -> 1.08 (axis-aligned), 0.74 (mixed); d=16 -> 0.60.
    truth = 2.0
    low_dim = mutual_information(*gaussian_pair(2_000, 1, truth, seed=0), "ksg", n_bootstrap=0)
    high_dim = mutual_information(
        *gaussian_pair(2_000, 8, truth, seed=0, mix=False), "ksg", n_bootstrap=0
    )
    assert abs(low_dim.estimate - truth) < 0.1
    assert high_dim.estimate < truth - 0.5


def test_infonce_cosine_bounded_and_increasing():
    # cosine critic needs a shared space: axis-aligned pairs (b_i ~ rho a_i), no mixing
    estimates = []
    for truth in (0.2, 1.0, 3.0):
        a, b = gaussian_pair(3_000, 8, truth, seed=2, mix=False)
        res = mutual_information(a, b, "infonce", batch_size=512, n_bootstrap=50)
        assert res.upper_bound == pytest.approx(np.log(3_000))
        assert res.estimate <= res.upper_bound
        assert res.ci_low <= res.estimate <= res.ci_high
        estimates.append(res.estimate)
    # measured -2.4, 0.1, 2.6 (a lower bound: the fixed critic can be far from optimal)
    assert estimates[0] < estimates[1] < estimates[2]


def test_infonce_saturates_at_log_n():
    # Identical embeddings: MI is infinite, the estimate must hit but never exceed log N.
    # 32-d: the largest cosine between distinct random points is ~0.6, so with temperature
    # 100 each negative weighs < e^-40 against the positive and the loss is ~0.
    a = np.random.default_rng(3).normal(size=(200, 32))
    res = mutual_information(a, a.copy(), "infonce", temperature=100.0, n_bootstrap=20)
    assert res.estimate <= np.log(200)
    assert res.estimate > np.log(200) - 1e-6


def test_infonce_learned_critic_different_dims_bounded_and_increasing():
    estimates = []
    for truth in (0.2, 1.0, 3.0):
        # a has 8 columns (5 informative + 3 noise, mixed), b has 5: MI = truth
        a, b = gaussian_pair(3_000, 5, truth, seed=4, extra_a=3)
        res = mutual_information(a, b, "infonce", critic="learned", n_steps=200, n_bootstrap=20)
        assert res.upper_bound == pytest.approx(np.log(1_500))  # evaluation half
        assert res.estimate <= res.upper_bound
        # a valid lower bound up to sampling error (sd ~ 0.03 nats at N = 1500)
        assert res.estimate <= truth + 0.1
        estimates.append(res.estimate)
    assert estimates[0] < estimates[1] < estimates[2]


@pytest.mark.parametrize("method", ["gaussian", "ksg"])
def test_interval_contains_estimate_and_truth(method):
    a, b = gaussian_pair(2_000, 1, 1.0, seed=5, mix=False)
    res = mutual_information(a, b, method, n_bootstrap=40, seed=0)
    assert res.ci_low <= res.estimate <= res.ci_high
    # width ~ 2 * 1.96 * sd with sd ~ 0.02-0.03 nats at n = 2000
    assert 0.0 < res.ci_high - res.ci_low < 0.3
    again = mutual_information(a, b, method, n_bootstrap=40, seed=0)
    assert again == res  # seeded
    skipped = mutual_information(a, b, method, n_bootstrap=0)
    assert np.isnan(skipped.ci_low) and np.isnan(skipped.ci_high)


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 2)), rng.normal(size=(50, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        mutual_information(a, b[:40])
    with pytest.raises(ValueError, match="2-D"):
        mutual_information(a[:, 0], b)
    with pytest.raises(ValueError, match="finite"):
        mutual_information(np.where(a > 2, np.nan, a), b)
    with pytest.raises(ValueError, match="at least 10 cells"):
        mutual_information(a[:5], b[:5])
    with pytest.raises(ValueError, match="constant columns"):
        mutual_information(np.ones((50, 2)), b)
    with pytest.raises(ValueError, match="method"):
        mutual_information(a, b, "histogram")
    with pytest.raises(ValueError, match="d_a == d_b"):
        mutual_information(a, b, "infonce")
    with pytest.raises(ValueError, match="critic"):
        mutual_information(a, b, "infonce", critic="mlp")
    with pytest.raises(ValueError, match="too large"):
        mutual_information(a, b, "ksg", k=30)
    with pytest.raises(ValueError, match="confidence"):
        mutual_information(a, b, confidence=1.5)
    with pytest.raises(ValueError, match="n_bootstrap"):
        mutual_information(a, b, n_bootstrap=-1)
