"""InteractionModule's interface for the refits and the calibration (lucidvi.train)."""

import numpy as np
import pytest
import torch
from scvi import REGISTRY_KEYS

from lucidvi.module import InteractionModule
from lucidvi.train import NeighborhoodBatchLoader


def _minibatch(n: int = 30, n_genes: int = 6, n_labels: int = 3, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    neighbours = np.stack(
        [rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)]
    )
    arrays = {
        REGISTRY_KEYS.X_KEY: rng.poisson(3, size=(n, n_genes)).astype(np.float32) + 1,
        REGISTRY_KEYS.LABELS_KEY: rng.integers(0, n_labels, size=(n, 1)),
        REGISTRY_KEYS.BATCH_KEY: np.zeros((n, 1), dtype=np.int64),
        "neighbor_index": neighbours,
        "neighbor_distance": rng.uniform(1, 2, size=(n, k)).astype(np.float32),
    }
    return next(iter(NeighborhoodBatchLoader(arrays, np.arange(n), batch_size=n)))


@pytest.mark.parametrize("dispersion", ["gene-label", "gene"])
def test_a_types_parameters_are_read_and_set_through_the_module(dispersion):
    torch.manual_seed(0)
    module = InteractionModule(n_input=6, n_labels=3, n_heads=2, n_latent=4, dispersion=dispersion)
    assert module.spread_per_type == (dispersion == "gene-label")
    profile, log_scale = torch.arange(6.0), torch.full((1, 6), -0.5, dtype=torch.float64)
    module.set_type_parameters(1, profile.double(), log_scale)
    read_profile, read_scale = module.type_parameters(1)
    torch.testing.assert_close(read_profile, profile)
    torch.testing.assert_close(read_scale, log_scale.float())
    assert not read_profile.requires_grad and read_scale.shape == (1, 6)
    untouched = module.type_parameters(0)[0].clone()
    module.set_type_parameters(0, untouched + 1.0)  # no spread given: it stays
    torch.testing.assert_close(module.type_parameters(0)[0], untouched + 1.0)
    torch.testing.assert_close(module.type_parameters(1)[1], log_scale.float())


def test_expression_terms_are_those_of_inference_and_generative():
    torch.manual_seed(0)
    module = InteractionModule(n_input=6, n_labels=3, n_heads=2, n_latent=4).eval()
    tensors = _minibatch()
    x, intrinsic, niche, labels = module.expression_terms(tensors)
    with torch.no_grad():
        _, generative = module(tensors, compute_loss=False)
    torch.testing.assert_close(x, tensors[REGISTRY_KEYS.X_KEY])
    torch.testing.assert_close(intrinsic, generative["intrinsic"])
    torch.testing.assert_close(niche, generative["niche"])
    assert torch.equal(labels, tensors[REGISTRY_KEYS.LABELS_KEY][:, 0].long())
    assert niche.abs().sum() > 0  # the heads act


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
@pytest.mark.parametrize("dispersion", ["gene-label", "gene"])
def test_log_likelihood_at_several_niche_scales(likelihood, dispersion):
    torch.manual_seed(0)
    module = InteractionModule(
        n_input=6, n_labels=3, n_heads=2, n_latent=4, likelihood=likelihood, dispersion=dispersion
    ).eval()
    with torch.no_grad():
        module.log_scale.normal_()
        module.label_profile.weight.normal_()
    x, intrinsic, niche, labels = module.expression_terms(_minibatch())
    niche = niche + torch.randn_like(niche)  # a niche that matters
    scales = [0.0, 0.3, 1.0]
    values = module.scaled_niche_log_likelihood(x, intrinsic, niche, labels, scales)
    for column, scale in enumerate(scales):
        expected = module.log_likelihood(x, intrinsic + scale * niche, labels)
        torch.testing.assert_close(values[:, column], expected, rtol=1e-5, atol=1e-4)


def test_the_niche_is_linear_in_its_coordinates():
    torch.manual_seed(0)
    module = InteractionModule(n_input=6, n_labels=3, n_heads=2, n_latent=4, niche_rank=2).eval()
    with torch.no_grad():
        module.niche_scale.copy_(torch.tensor([1.0, 0.5, 0.0]))
        module.niche_center.normal_()
    tensors = _minibatch()
    _, _, niche, labels = module.expression_terms(tensors)
    coordinates = module.niche_coordinates(tensors)
    assert coordinates.shape == (len(labels), 4)
    torch.testing.assert_close(module.niche_from_coordinates(coordinates, labels), niche)
