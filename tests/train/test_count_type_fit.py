"""The Newton refit of one type's counts: its derivatives and its optimum, against autograd."""

import pytest
import torch

from lucidvi.train import _count_type_fit
from lucidvi.train._count_type_fit import TypeCells, fit_type_counts


def _problem(varying: bool = True, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    n_cells, n_genes = 300, 7
    x = torch.poisson(torch.rand(n_cells, n_genes, generator=generator) * 30).double()
    x[:5, 0] = 500.0  # counts beyond the Gamma-function tables
    x[:, 1] = 0.0
    x[0, 1] = 1.0  # a gene seen once
    x[:, 2] += 1.0  # no cell without counts
    if varying:
        fixed = 0.3 * torch.randn(n_cells, n_genes, dtype=torch.float64, generator=generator)
    else:
        fixed = 0.3 * torch.randn(n_genes, dtype=torch.float64, generator=generator).expand(
            n_cells, n_genes
        )
    parts = [fixed[:100], fixed[100:]]
    cells = TypeCells([x[:100].float(), x[100:].float()], lambda i: parts[i], varying)
    profile = torch.randn(n_genes, dtype=torch.float64, generator=generator)
    log_scale = torch.randn(n_genes, dtype=torch.float64, generator=generator)
    return x, fixed, cells, profile, log_scale


def _objective(x, fixed, start_sum, fit_scale):
    """The refit's objective in textbook form (lgamma), for autograd."""
    library = torch.log(x.sum(-1, keepdim=True))

    def objective(profile, log_scale):
        log_mu = torch.log_softmax(profile + fixed, -1) + library
        theta = log_scale.exp()
        loglik = (
            x * log_mu
            + theta * log_scale
            - (x + theta) * torch.logaddexp(log_mu, log_scale.expand_as(log_mu))
            + torch.lgamma(x + theta)
            - torch.lgamma(theta)
            - torch.lgamma(x + 1)
        ).sum(-1)
        value = -loglik.mean() - torch.log_softmax(profile, -1).sum() / len(x)
        value = value + 0.5 * (profile.sum() - start_sum) ** 2 / len(profile)
        if fit_scale:
            value = value + 0.5 * ((log_scale / 10.0) ** 2).sum() / len(x)
        return value

    return objective


@pytest.mark.parametrize("varying", [True, False])
def test_value_gradient_and_hessian_are_those_of_autograd(varying):
    x, fixed, cells, profile, log_scale = _problem(varying)
    start_sum = float(profile.sum()) + 0.7
    objective = _objective(x, fixed, start_sum, fit_scale=True)
    tables = _count_type_fit._Tables(cells)
    subset = None if varying else torch.zeros(len(x), dtype=torch.bool)  # as the fit does
    point = _count_type_fit._evaluate(cells, tables, profile, log_scale, True, start_sum, subset)
    inputs = (profile.clone().requires_grad_(True), log_scale.clone().requires_grad_(True))
    value = objective(*inputs)
    gradients = torch.autograd.grad(value, inputs)
    hessian = torch.autograd.functional.hessian(objective, (profile, log_scale))
    assert point.value == pytest.approx(float(value.detach()), abs=1e-10)
    torch.testing.assert_close(point.grad_profile, gradients[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(point.grad_scale, gradients[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(point.hess_profile, hessian[0][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(point.hess_mixed, hessian[0][1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(point.hess_scale, hessian[1][1].diagonal(), rtol=1e-8, atol=1e-9)
    assert torch.count_nonzero(hessian[1][1] - torch.diag(hessian[1][1].diagonal())) == 0


def test_a_subset_of_cells_estimates_the_outer_products():
    x, fixed, cells, profile, log_scale = _problem()
    tables = _count_type_fit._Tables(cells)
    subset = torch.arange(len(x)) % 3 > 0  # two thirds of the cells
    exact, estimate = (
        _count_type_fit._evaluate(cells, tables, profile, log_scale, True, 0.0, chosen)
        for chosen in (None, subset)
    )
    torch.testing.assert_close(estimate.grad_profile, exact.grad_profile)  # exact either way
    error = (estimate.hess_profile - exact.hess_profile).abs().max()
    assert 0 < error < 0.05 * exact.hess_profile.abs().max()


@pytest.mark.parametrize("fit_scale", [True, False])
@pytest.mark.parametrize("varying", [True, False])
def test_the_fit_reaches_the_optimum(fit_scale, varying):
    x, fixed, cells, profile, log_scale = _problem(varying, seed=1)
    start = (5 * profile).float(), log_scale[None].float()  # far from the optimum
    fitted_profile, fitted_scale = fit_type_counts(cells, *start, fit_scale=fit_scale)
    assert fitted_scale.shape == (1, len(profile))
    if not fit_scale:
        torch.testing.assert_close(fitted_scale, start[1].double())
    objective = _objective(x, fixed, float(start[0].double().sum()), fit_scale)
    inputs = (fitted_profile.requires_grad_(True), fitted_scale[0].requires_grad_(True))
    gradients = torch.autograd.grad(objective(*inputs), inputs)
    assert float(gradients[0].abs().max()) < 1e-6
    if fit_scale:
        assert float(gradients[1].abs().max()) < 1e-6
    assert float(fitted_profile.detach().sum()) == pytest.approx(float(start[0].double().sum()))
