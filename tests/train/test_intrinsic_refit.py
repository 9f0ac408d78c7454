"""Refitting each type's profile by maximum likelihood after training (counts)."""

import warnings

import numpy as np
import pytest
import scvi
import torch

import lucidvi
from lucidvi.model import InteractionVI
from lucidvi.nn import expression_log_likelihood
from lucidvi.train import _intrinsic_refit, refit_intrinsic


@pytest.fixture(scope="module")
def baseline():
    """A model without heads, one epoch on 1,000 CBMC cells: profiles far from the optimum."""
    scvi.settings.seed = 0
    adata = lucidvi.data.simulate_spatial_niches(
        lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=1000, seed=3
    )
    InteractionVI.setup_anndata(adata, labels_key="cell_type", layer="counts", n_neighbors=5)
    model = InteractionVI(adata, n_heads=0)
    model.train(max_epochs=1, enable_progress_bar=False)
    return model


def _objective_gradient(model, code: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the refit objective (mean NLL, pseudo-counts, prior) at the stored values."""
    module = model.module
    train = np.asarray(model.train_indices)
    codes = model.adata.obs["cell_type"].cat.codes.to_numpy()
    counts = model.adata.layers["counts"][train[codes[train] == code]]
    x = torch.as_tensor(np.asarray(counts.todense() if hasattr(counts, "todense") else counts))
    x = x.double()
    profile = module.label_profile.weight[code].detach().double().requires_grad_(True)
    log_scale = module.log_scale[code : code + 1].detach().double().requires_grad_(True)
    offset = module.batch_offset.weight[0].detach().double()
    nll = -expression_log_likelihood("nb", x, (profile + offset)[None], log_scale).mean()
    nll = nll - torch.log_softmax(profile, -1).sum() / len(x)
    nll = nll + 0.5 * (log_scale / 10.0).square().sum() / len(x)
    nll.backward()
    return profile.grad, log_scale.grad


def test_refit_reaches_a_stationary_point(baseline):
    """Single precision leaves gradients near 1e-2; the polish in double takes them below 1e-4."""
    counts = baseline.adata.obs["cell_type"].value_counts()
    for cell_type in counts.index[counts >= 20]:
        code = baseline.labels.index(cell_type)
        grad_profile, grad_log_scale = _objective_gradient(baseline, code)
        # a softmax gradient sums to 0, so a common shift is no direction of descent
        assert abs(float(grad_profile.sum())) < 1e-6
        assert float(grad_profile.abs().max()) < 1e-4, cell_type
        assert float(grad_log_scale.abs().max()) < 1e-4, cell_type


def test_a_common_shift_of_the_profile_stays_put_and_changes_nothing(baseline):
    """The softmax ignores a shift, so the refit keeps it (the line search cannot run along it)."""
    module = baseline.module
    train = np.asarray(baseline.train_indices)
    before = module.label_profile.weight.detach().clone()
    with torch.no_grad():
        module.label_profile.weight += 5.0
    refit_intrinsic(baseline.module, baseline.adata_manager, train)
    after = module.label_profile.weight.detach()
    torch.testing.assert_close(
        after.sum(1), before.sum(1) + 5.0 * after.shape[1], rtol=1e-5, atol=1e-2
    )
    torch.testing.assert_close(
        torch.softmax(after, 1), torch.softmax(before, 1), rtol=1e-3, atol=1e-7
    )


def _overflow(monkeypatch):
    def step(self, closure):
        raise RuntimeError("value cannot be converted to type float without overflow")

    monkeypatch.setattr(torch.optim.LBFGS, "step", step)


def _nan_likelihood(monkeypatch):
    def nan(likelihood, x, linear_predictor, log_scale, index=None, validate=True):
        return (linear_predictor * float("nan")).sum(-1)

    monkeypatch.setattr(_intrinsic_refit, "expression_log_likelihood", nan)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (_overflow, "value cannot be converted"),  # seen once in a line search on another CPU
        # NaN in the objective (e.g. an inverse dispersion overflowing): the line search fails
        (_nan_likelihood, "value cannot be converted"),
    ],
)
def test_a_failed_refit_warns_and_keeps_the_trained_values(baseline, monkeypatch, failure, message):
    """Warn, name the type, keep its trained values and go on with the others."""
    failure(monkeypatch)
    module = baseline.module
    before = (module.label_profile.weight.detach().clone(), module.log_scale.detach().clone())
    with pytest.warns(RuntimeWarning, match=f"'B' stopped on {message}"):
        failed = refit_intrinsic(module, baseline.adata_manager, np.asarray(baseline.train_indices))
    assert failed == baseline.labels  # every type failed, and each is reported
    torch.testing.assert_close(module.label_profile.weight.detach(), before[0])
    torch.testing.assert_close(module.log_scale.detach(), before[1])


def test_a_refit_that_fails_in_single_precision_is_retried_in_double(baseline, monkeypatch):
    """The first stage overflows in float32: the float64 retry fits, nothing is marked failed."""
    minimize = _intrinsic_refit._minimize_counts

    def single_fails(x, *args, **kwargs):
        if x.dtype == torch.float32:
            raise RuntimeError("value cannot be converted to type float without overflow")
        return minimize(x, *args, **kwargs)

    monkeypatch.setattr(_intrinsic_refit, "_minimize_counts", single_fails)
    module = baseline.module
    with torch.no_grad():  # move every profile away from its optimum
        generator = torch.Generator().manual_seed(0)
        module.label_profile.weight += 0.5 * torch.randn(
            module.label_profile.weight.shape, generator=generator
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train = np.asarray(baseline.train_indices)
        assert refit_intrinsic(module, baseline.adata_manager, train) == []
    largest = baseline.adata.obs["cell_type"].value_counts().index[0]
    grad_profile, _ = _objective_gradient(baseline, baseline.labels.index(largest))
    assert float(grad_profile.abs().max()) < 1e-4  # back at the optimum, found in float64
