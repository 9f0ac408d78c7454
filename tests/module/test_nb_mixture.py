import numpy as np
import pytest
import torch
from scipy.stats import nbinom

from lucidvi.module import NBMixture


def _scipy_nb(x, mean, theta):
    return nbinom.logpmf(x, theta, theta / (theta + mean))


def test_cluster_log_likelihood_matches_scipy_with_batches():
    torch.manual_seed(0)
    module = NBMixture(n_input=5, n_clusters=3, n_batch=2)
    with torch.no_grad():
        module.log_mu.normal_(-2.0, 1.0)
        module.log_theta.normal_(1.0, 1.0)
        module.batch_effect.normal_(0.0, 0.5)
    x = torch.tensor([[0, 3, 1, 80, 2], [5, 0, 0, 1, 130]], dtype=torch.float32)
    log_size = torch.log(torch.tensor([[50.0], [200.0]]))
    batch = torch.tensor([[0], [1]])
    result = module.cluster_log_likelihood(x, log_size, batch).detach().numpy()
    mu = np.exp(module.log_mu.detach().numpy())
    theta = np.exp(module.log_theta.detach().numpy())
    effects = np.vstack([np.zeros(5), module.batch_effect.detach().numpy()])
    for i in range(2):
        for k in range(3):
            mean = np.exp(log_size[i].item()) * mu[k] * np.exp(effects[batch[i].item()])
            expected = _scipy_nb(x[i].numpy(), mean, theta[k]).sum()
            assert result[i, k] == pytest.approx(expected, rel=1e-4)


def test_loss_at_exact_posterior_is_negative_marginal_likelihood():
    torch.manual_seed(1)
    module = NBMixture(n_input=4, n_clusters=2, dispersion="gene")
    with torch.no_grad():
        module.log_mu.normal_(-1.0, 1.0)  # distinct clusters, so the posterior is not uniform
    x = torch.poisson(torch.full((6, 4), 3.0))
    x[:, 0] += 1
    log_size = torch.log(x.sum(-1, keepdim=True))
    batch = torch.zeros(6, 1, dtype=torch.long)
    log_likelihood = module.cluster_log_likelihood(x, log_size, batch)
    log_joint = log_likelihood + module.log_weights()
    marginal = torch.logsumexp(log_joint, dim=-1)
    generative = {"log_likelihood": log_likelihood}
    # an encoder that matches the exact posterior adds nothing to the loss
    inference = {"logits": log_joint - marginal[:, None]}
    loss = module.loss({}, inference, generative)
    assert float(loss.loss.detach()) == pytest.approx(-float(marginal.mean()), rel=1e-5)
    assert float(loss.extra_metrics["encoder_kl"]) == pytest.approx(0.0, abs=1e-5)
    # any other encoder output adds KL(posterior || encoder) > 0, and leaves the ELBO part
    other = module.loss({}, {"logits": torch.zeros_like(log_joint)}, generative)
    assert float(other.loss.detach()) > float(loss.loss.detach())
    assert float(other.reconstruction_loss_sum) == pytest.approx(
        float(loss.reconstruction_loss_sum), rel=1e-6
    )


def test_bad_dispersion_raises():
    with pytest.raises(ValueError, match="dispersion"):
        NBMixture(n_input=3, n_clusters=2, dispersion="cell")
