"""Refitting each type's profile by maximum likelihood after training (counts)."""

import warnings

import numpy as np
import pytest
import scvi
import torch

import lucidvi
from lucidvi.model import InteractionVI
from lucidvi.nn import expression_log_likelihood
from lucidvi.train import _count_type_fit, refit_intrinsic


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
    def terms(self, log_theta):
        raise RuntimeError("value cannot be converted to type float without overflow")

    monkeypatch.setattr(_count_type_fit._Tables, "terms", terms)


def _nan_likelihood(monkeypatch):
    evaluate = _count_type_fit._evaluate

    def nan(*args, **kwargs):
        point = evaluate(*args, **kwargs)
        point.value = float("nan")
        return point

    monkeypatch.setattr(_count_type_fit, "_evaluate", nan)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (_overflow, "value cannot be converted"),  # an error inside the fit
        (_nan_likelihood, "a non-finite objective"),  # e.g. an inverse dispersion overflowing
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


def test_a_refit_from_far_away_reaches_the_optimum(baseline):
    """Two profiles moved well away from their optimum: the damped Newton steps come back."""
    module = baseline.module
    counts = baseline.adata.obs["cell_type"].value_counts()
    moved = [counts.index[0], counts.index[counts >= 20][-1]]  # the largest, a small one
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for cell_type in moved:
            profile = module.label_profile.weight[baseline.labels.index(cell_type)]
            profile += 0.5 * torch.randn(profile.shape, generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train = np.asarray(baseline.train_indices)
        assert refit_intrinsic(module, baseline.adata_manager, train) == []
    for cell_type in moved:
        grad_profile, grad_log_scale = _objective_gradient(
            baseline, baseline.labels.index(cell_type)
        )
        assert float(grad_profile.abs().max()) < 1e-4, cell_type
        assert float(grad_log_scale.abs().max()) < 1e-4, cell_type
