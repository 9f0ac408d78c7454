import pytest
import torch

from lucidvi.nn import (
    expression_log_likelihood,
    log_factorial_sum,
    nb_log_likelihood,
    poisson_log_likelihood,
    zinb_log_likelihood,
)
from lucidvi.nn._likelihoods import TABLE_MAX_COUNT


def _textbook_nb(x, log_mu, theta):
    mu = log_mu.exp()
    return (
        x * torch.log(mu)
        + theta * torch.log(theta)
        - (x + theta) * torch.log(mu + theta)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )


@pytest.fixture
def counts():
    torch.manual_seed(0)
    rates = torch.tensor([0.05, 1.0, 10.0, 80.0, 400.0]).repeat(8)  # some above the table
    x = torch.poisson(torch.rand(60, 40, dtype=torch.float64) * rates)
    assert (x > TABLE_MAX_COUNT).any() and (x == 0).any()
    log_mu = torch.randn(60, 40, dtype=torch.float64) * 2 + 1
    log_theta = torch.randn(3, 40, dtype=torch.float64)
    groups = torch.randint(0, 3, (60,))
    return x, log_mu, log_theta, groups


def test_nb_matches_textbook_formula_and_gradients(counts):
    x, log_mu, log_theta, groups = counts
    ours_mu, ours_theta = log_mu.clone().requires_grad_(), log_theta.clone().requires_grad_()
    ref_mu, ref_theta = log_mu.clone().requires_grad_(), log_theta.clone().requires_grad_()
    ours = nb_log_likelihood(x, ours_mu, ours_theta, groups)
    ref = _textbook_nb(x, ref_mu, ref_theta[groups].exp()).sum(-1)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(ours_theta.grad, ref_theta.grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours_mu.grad, ref_mu.grad, rtol=1e-9, atol=1e-9)


def test_nb_single_dispersion_group(counts):
    x, log_mu, log_theta, _ = counts
    ref = _textbook_nb(x, log_mu, log_theta[0].exp()).sum(-1)
    torch.testing.assert_close(nb_log_likelihood(x, log_mu, log_theta[:1]), ref, rtol=0, atol=1e-9)


def test_zinb_matches_mixture_definition(counts):
    x, log_mu, log_theta, groups = counts
    logits = torch.randn_like(x)
    pi = torch.sigmoid(logits)
    nb = _textbook_nb(x, log_mu, log_theta[groups].exp())
    ref = torch.where(x == 0, torch.log(pi + (1 - pi) * nb.exp()), torch.log(1 - pi) + nb).sum(-1)
    ours = zinb_log_likelihood(x, log_mu, log_theta, logits, groups)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-8)


def test_poisson_and_log_factorial(counts):
    x, log_mu, _, _ = counts
    ref = torch.distributions.Poisson(log_mu.exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(poisson_log_likelihood(x, log_mu), ref, rtol=0, atol=1e-8)
    torch.testing.assert_close(log_factorial_sum(x), torch.lgamma(x + 1).sum(-1))


def test_nb_rejects_non_integer_counts(counts):
    x, log_mu, log_theta, _ = counts
    with pytest.raises(ValueError, match="integer"):
        nb_log_likelihood(x + 0.5, log_mu, log_theta[:1])


def test_expression_likelihood_is_the_nb_at_the_observed_library_or_a_gaussian(counts):
    x, logits, log_scale, index = counts
    assert (x.sum(-1) > 0).all()  # every cell has a library
    log_mu = torch.log_softmax(logits, -1) + torch.log(x.sum(-1, keepdim=True))
    expected = _textbook_nb(x, log_mu, log_scale[index].exp()).sum(-1)
    result = expression_log_likelihood("nb", x, logits, log_scale, index)
    torch.testing.assert_close(result, expected, rtol=1e-9, atol=1e-7)
    normal = torch.distributions.Normal(logits, log_scale[0].exp())
    torch.testing.assert_close(
        expression_log_likelihood("gaussian", x, logits, log_scale[:1]),
        normal.log_prob(x).sum(-1),
    )
