"""The start of batch EM: the mixture's parameters in closed form from initial memberships."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lucidvi.module import NBMixture

from ._count_chunks import CountChunks

# Floor of a component's summed responsibilities (and of its cells' summed size factors at the
# start): a component that lost every cell keeps a finite log weight (log 1e-10 = -23) and can
# win cells back.
MIN_WEIGHT = 1e-10
# Range of the start's moment estimate of theta, which divides by the excess variance and is
# noisy for few cells: inside EM's bounds of theta and away from them.
_START_THETA_MIN, _START_THETA_MAX = 0.1, 1000.0
# Floor of that excess variance (over the Poisson's), which is 0 or negative for a gene without
# overdispersion in a starting cluster.
_MIN_EXCESS_VARIANCE = 1e-12
# Floor of the start's mean, in counts for a cell of median size factor: a gene without counts
# in a starting cluster starts at a finite log mu, at an expected count negligible for any cell.
_START_MEAN_FLOOR = 1e-3


def _moment_sums(
    counts, log_size: np.ndarray, batch_index: np.ndarray, responsibilities: np.ndarray
) -> np.ndarray:
    """Return a chunk's ``sum_i r_ik x_ij`` and ``sum_i r_ik (x_ij / s_i)^2`` (float64, flat)."""
    r = np.asarray(responsibilities, dtype=np.float64)
    if sp.issparse(counts):
        x = sp.csr_matrix(counts, dtype=np.float64)
        squared = x.multiply(x)
    else:
        x = np.asarray(counts, dtype=np.float64)
        squared = x**2
    scaled_r = r * np.exp(-2.0 * np.asarray(log_size, dtype=np.float64))[:, None]
    first = np.asarray(x.T @ r).T
    second = np.asarray(squared.T @ scaled_r).T
    return np.concatenate([first.ravel(), second.ravel()])


@torch.no_grad()
def initialize_parameters(
    module: NBMixture, chunks: CountChunks, responsibilities: np.ndarray
) -> None:
    """Set the parameters from initial responsibilities in closed form.

    ``mu_kj = sum_i r_ik x_ij / sum_i r_ik s_i`` (the ratio estimator; the Poisson maximum
    likelihood estimate), ``theta_kj`` by the method of moments on ``x / s`` (clipped to
    ``[0.1, 1000]``), ``pi_k = mean_i r_ik`` and no batch effects. The sums over cells are
    taken chunk by chunk (:meth:`CountChunks.sum`): the counts are never copied whole.

    Parameters
    ----------
    module
        The mixture to initialise.
    chunks
        The cells.
    responsibilities
        Initial cluster memberships, shape ``(n_cells, K)``, rows summing to one.
    """
    r = np.asarray(responsibilities, dtype=np.float64)
    n_clusters, n_genes = r.shape[1], chunks.n_genes
    size = np.exp(chunks.log_size)
    sums = chunks.sum(_moment_sums, r, size=2 * n_clusters * n_genes)
    first, second = sums.reshape(2, n_clusters, n_genes)
    weights = r.sum(0) + MIN_WEIGHT
    # a component that starts with no cells gets the floor below as its mean, not 0 / 0
    mean = first / np.maximum(r.T @ size, MIN_WEIGHT)[:, None]
    second_moment = second / weights[:, None]
    poisson_part = (r.T @ (1.0 / size))[:, None] / weights[:, None] * mean
    excess = second_moment - mean**2 - poisson_part
    # no excess variance (a Poisson-like gene): the floor sends theta to the upper end
    theta = mean**2 / np.maximum(excess, _MIN_EXCESS_VARIANCE)
    theta = np.clip(theta, _START_THETA_MIN, _START_THETA_MAX)
    if module.dispersion == "gene":
        theta = np.exp((np.log(theta) * weights[:, None]).sum(0, keepdims=True) / weights.sum())
    floor = _START_MEAN_FLOOR / np.median(size)
    like = {"dtype": module.log_mu.dtype, "device": module.log_mu.device}
    module.log_mu.copy_(torch.as_tensor(np.log(mean + floor), **like))
    module.log_theta.copy_(torch.as_tensor(np.log(theta), **like))
    module.logits_pi.copy_(torch.as_tensor(np.log(weights / weights.sum()), **like))
    module.batch_effect.zero_()
