r"""Batch expectation-maximisation (EM) for the negative binomial mixture.

Each iteration is one pass over the cells in row chunks (a sparse matrix is densified one
chunk at a time), a sum over the chunks (:meth:`CountChunks.sum`): in this process for counts
in memory or backed, as dask tasks (one per row block, on the user's dask scheduler or
``distributed.Client``) for a dask array. The pass computes, at the current parameters, every
cell's log-likelihood under every cluster, the exact responsibilities
``r_ik = softmax_k(log pi_k + log NB(x_i | s_i mu_k, theta_k))`` (E step) and the gradients and
curvatures of the expected complete-data log-likelihood that the M step needs:

- ``pi_k = mean_i r_ik`` (closed form);
- ``log mu_kj``: one Newton step (the NB log-likelihood is concave in ``log mu`` at fixed
  ``theta``, so the step is an ascent direction); ``mu`` has no closed form once size factors
  differ between cells;
- ``log theta_kj``: one safeguarded Newton step (digamma and trigamma differences from
  per-iteration tables, exact ``digamma``/``polygamma`` above the table);
- batch effects ``beta_bj``: a Newton step, on alternate iterations (they shift the same mean
  as ``mu``, so updating both at once would overshoot).

The starting point is the closed-form ratio estimator ``mu_kj = sum_i r_ik x_ij / sum_i r_ik s_i``
and a moment estimate of ``theta`` from the initial responsibilities. Iterations stop when the
relative change of the log-likelihood falls below ``tol``.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import torch
from scipy.special import logsumexp
from scvi.utils import track

from lucidvi.module import NBMixture

from ._count_chunks import CountChunks, chunk_tensors
from ._em_start import MIN_WEIGHT, initialize_parameters

logger = logging.getLogger(__name__)

# Counts up to this value read their log Gamma, digamma and trigamma differences from tables
# built once per iteration ((65, n_genes) per row of inverse dispersions, cheap next to a pass
# over the cells); the rare larger UMI counts are computed exactly (lgamma, digamma, polygamma).
# The same bound as the minibatch likelihood's (lucidvi.nn.nb_log_likelihood).
_TABLE_MAX = 64
# Cells whose responsibility for a cluster is below this are skipped in its M-step sums: their
# terms are negligible, and as most cells belong to few clusters, skipping them saves most of
# the M step's work.
_MIN_RESPONSIBILITY = 1e-6
# Floor of log mu after each step: mu >= 2e-22 per unit size factor, an expected count far
# below one for any cell. It only keeps the mean of a gene without counts in a cluster finite
# (its Newton steps head to minus infinity).
_LOG_MU_MIN = -50.0
# Bounds of log theta after each step, theta in [0.0067, 1.6e5]. Above, the NB is a Poisson for
# any practical mean (its variance exceeds the mean by mu / theta, under 0.1% for mu < 160);
# without the bound, a Poisson-like gene's theta would grow forever as its likelihood keeps
# creeping up towards the Poisson limit. Below, at dispersions 1 / theta above 150, psi(theta)
# (about -1 / theta) would make the steps ill-conditioned.
_LOG_THETA_MIN = -5.0
_LOG_THETA_MAX = 12.0
# Added to the Newton curvatures of log mu and of the batch effects: the curvature of a gene
# without counts in a cluster (or batch) is 0, and the floor makes its step 0 rather than 0 / 0.
_CURVATURE_FLOOR = 1e-8
# Above this, exp(d) of d = log(mean / theta) could overflow float32 (whose largest exponent is
# 88.7): the log-likelihood then takes softplus(d) directly instead of log1p(exp(.) exp(.)).
_MAX_EXP_ARGUMENT = 80.0
# Largest Newton step per iteration in log mu and in a batch effect (a factor of e^3 = 20):
# far from the optimum, e.g. for a start's cluster of few cells, the quadratic model overshoots;
# near it, the steps are much smaller and the cap does not bind.
_MAX_LOG_MU_STEP = 3.0
# Largest step per iteration in log theta (a factor of e^2 = 7.4), for the same reason.
_MAX_LOG_THETA_STEP = 2.0
# Where the curvature in log theta is not negative, a Newton step would go the wrong way: a
# fixed step of 0.5 (a factor of 1.6) up the gradient instead.
_LOG_THETA_GRADIENT_STEP = 0.5


def posterior_in_chunks(module: NBMixture, chunks: CountChunks) -> tuple[np.ndarray, np.ndarray]:
    """Exact responsibilities and marginal log-likelihoods of all cells.

    Takes the arguments of :func:`component_log_likelihood_in_chunks` and adds the mixture
    weights to its per-component log-likelihoods.

    Returns
    -------
    ``(responsibilities, log_likelihood)``: arrays of shapes ``(n_cells, K)`` and ``(n_cells,)``.
    """
    log_joint = component_log_likelihood_in_chunks(module, chunks)
    log_joint += module.log_weights().detach().double().cpu().numpy()[None, :]
    marginal = logsumexp(log_joint, axis=1)
    return np.exp(log_joint - marginal[:, None]).astype(np.float32), marginal


def component_log_likelihood_in_chunks(module: NBMixture, chunks: CountChunks) -> np.ndarray:
    """Every cell's NB log-likelihood under every mixture component, chunk by chunk.

    Parameters
    ----------
    module
        The mixture.
    chunks
        The cells.

    Returns
    -------
    ``log NB(x_i | s_i mu_k, theta_k)``, shape ``(n_cells, K)`` (float64).
    """
    return chunks.map(_ComponentLogLikelihood(module, chunks.dtype), width=module.n_clusters)


class _ChunkFunction:
    """A function of one chunk at the mixture's current parameters, as dask ships it.

    Its pickled state, what dask sends its workers once per pass, is the mixture on the CPU;
    the count tables of :func:`_theta_tables` are rebuilt where it runs, once per process.

    Parameters
    ----------
    module
        The mixture.
    dtype
        Floating-point type of the chunks.
    """

    def __init__(self, module: NBMixture, dtype: torch.dtype):
        self.module, self.dtype = module, dtype

    @cached_property
    def tables(self) -> list:
        """The count tables of :func:`_count_tables`, one per row of inverse dispersions."""
        return _theta_tables(self.module)

    def __getstate__(self) -> dict:
        """Pickle the mixture, on the CPU, and not the tables."""
        module = self.module
        if module.log_mu.device.type != "cpu":
            module = copy.deepcopy(module).cpu()
        return {"module": module, "dtype": self.dtype}

    def tensors(self, counts, log_size: np.ndarray, batch_index: np.ndarray) -> tuple:
        """Return the chunk as tensors on the mixture's device (see :func:`chunk_tensors`)."""
        return chunk_tensors(counts, log_size, batch_index, self.module.log_mu.device, self.dtype)


class _ComponentLogLikelihood(_ChunkFunction):
    """Log-likelihoods of a chunk's cells under every component, ``(n, K)`` float64."""

    @torch.no_grad()
    def __call__(self, counts, log_size: np.ndarray, batch_index: np.ndarray) -> torch.Tensor:
        x, log_size, batch = self.tensors(counts, log_size, batch_index)
        offset = self.module.log_offset(log_size, batch)
        values, _ = _cluster_log_likelihood(self.module, x, offset, self.tables)
        return values.double()


def _theta_tables(module: NBMixture) -> list:
    """Build the tables of :func:`_count_tables` for each row of inverse dispersions."""
    return [_count_tables(torch.exp(row[None])) for row in module.log_theta]


def _e_step(module: NBMixture, x, log_size, batch, tables) -> tuple:
    """Responsibilities, marginal log-likelihoods and ``softplus(d)`` per cluster of one chunk."""
    offset = module.log_offset(log_size, batch)
    log_likelihood, softpluses = _cluster_log_likelihood(module, x, offset, tables)
    log_joint = log_likelihood + module.log_weights()
    marginal = torch.logsumexp(log_joint, dim=-1)
    return torch.exp(log_joint - marginal[:, None]), marginal, softpluses


def _count_tables(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tables over counts ``m <= 64`` (rows) for one row of inverse dispersions (columns).

    Returns ``log Gamma(theta + m) - log Gamma(theta) - log m!``, ``psi(theta + m) - psi(theta)``
    and ``psi'(theta + m) - psi'(theta)``, each of shape ``(65, n_genes)``.
    """
    steps = torch.arange(_TABLE_MAX, dtype=theta.dtype, device=theta.device)[:, None]
    shifted = theta + steps
    inverse = 1.0 / shifted
    zeros = torch.zeros_like(theta)
    log_factorial = torch.lgamma(steps + 2.0)
    values = torch.cat([zeros, torch.cumsum(torch.log(shifted), 0) - log_factorial])
    first = torch.cat([zeros, torch.cumsum(inverse, 0)])
    second = torch.cat([zeros, -torch.cumsum(inverse**2, 0)])
    return values, first, second


def _cluster_log_likelihood(
    module: NBMixture, x: torch.Tensor, offset: torch.Tensor, tables: list
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every cell's NB log-likelihood under every cluster, and ``softplus(log(mean / theta))``.

    Equals :meth:`~lucidvi.module.NBMixture.cluster_log_likelihood` with fewer passes over
    the chunk: ``sum_j x_ij d_ikj`` is one matrix product for all clusters, the count index of
    the Gamma-function tables is shared by the clusters, the Gamma-function terms are computed
    once when the clusters share their dispersions, and only ``softplus(d)`` is computed per
    cluster, as ``log1p(exp(offset) exp(log mu_k - log theta_k))`` where that cannot overflow
    (``exp(offset)`` once per chunk, half the cost of ``softplus`` of the sum).

    Returns
    -------
    ``(log_likelihood, softplus(d))``: shape ``(n, K)``, and one ``(n, G)`` tensor per cluster.
    """
    log_theta = module.log_theta
    per_cluster = module.dispersion == "cluster-gene"
    centred = module.log_mu - (log_theta if per_cluster else log_theta[0])  # (K, G)
    if offset.shape[-1] == 1:
        x_offset = offset[:, 0] * x.sum(-1)
    else:
        x_offset = torch.linalg.vecdot(x, offset)
    linear = x @ centred.T + x_offset[:, None]  # sum_j x_ij d_ikj
    rows = x.clamp(max=_TABLE_MAX).long()
    cells, genes = torch.nonzero(x > _TABLE_MAX, as_tuple=True)
    counts = x[cells, genes]

    def count_terms(t: int) -> torch.Tensor:
        """``sum_j log Gamma(x_ij + theta_tj) - log Gamma(theta_tj) - log x_ij!`` per cell."""
        value = tables[t][0].gather(0, rows).sum(-1)
        if cells.numel():
            top = torch.tensor(float(_TABLE_MAX), dtype=x.dtype, device=x.device)
            theta_large = torch.exp(log_theta[t])[genes]
            correction = (
                torch.lgamma(counts + theta_large)
                - torch.lgamma(theta_large + top)
                - torch.lgamma(counts + 1.0)
                + torch.lgamma(top + 1.0)
            )
            value = value.index_add(0, cells, correction)
        return value

    # with one row of inverse dispersions the count terms are the same for every cluster
    shared = None if per_cluster else count_terms(0)
    # exp(offset) exp(centred) overflows only when d = offset + centred nears log(float max)
    exp_offset = torch.exp(offset) if offset.max() + centred.max() < _MAX_EXP_ARGUMENT else None
    columns, softpluses = [], []
    for k in range(module.n_clusters):
        t = k if per_cluster else 0
        theta = torch.exp(log_theta[t])
        if exp_offset is None:
            softplus = torch.nn.functional.softplus(offset + centred[k])
        else:
            softplus = torch.log1p(exp_offset * torch.exp(centred[k]))
        value = linear[:, k] - torch.linalg.vecdot(x, softplus) - softplus @ theta
        columns.append(value + (count_terms(k) if per_cluster else shared))
        softpluses.append(softplus)
    return torch.stack(columns, dim=-1), softpluses


def _digamma_differences(x: torch.Tensor, theta: torch.Tensor, tables) -> tuple:
    """Gather ``psi(x + theta) - psi(theta)`` and the trigamma difference, exact above 64."""
    rows = x.clamp(max=_TABLE_MAX).long()
    first = tables[1].gather(0, rows)
    second = tables[2].gather(0, rows)
    cells, genes = torch.nonzero(x > _TABLE_MAX, as_tuple=True)
    if cells.numel():
        counts, t = x[cells, genes], theta[0, genes]
        first[cells, genes] = torch.digamma(counts + t) - torch.digamma(t)
        second[cells, genes] = torch.polygamma(1, counts + t) - torch.polygamma(1, t)
    return first, second


@dataclass
class _Statistics:
    """Sums over cells of the M step's gradients and curvatures (float64)."""

    grad_mu: torch.Tensor
    curv_mu: torch.Tensor
    grad_theta: torch.Tensor
    curv_theta: torch.Tensor
    grad_batch: torch.Tensor
    curv_batch: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def zeros(cls, module: NBMixture) -> _Statistics:
        k, g = module.log_mu.shape
        kt = module.log_theta.shape[0]
        b = module.n_batch

        def new(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.float64, device=module.log_mu.device)

        return cls(
            grad_mu=new(k, g),
            curv_mu=new(k, g),
            grad_theta=new(kt, g),
            curv_theta=new(kt, g),
            grad_batch=new(b, g),
            curv_batch=new(b, g),
            weights=new(k),
        )

    def flatten(self) -> torch.Tensor:
        """All sums in one float64 vector (the order of the fields)."""
        return torch.cat([getattr(self, field.name).reshape(-1) for field in fields(self)])

    @classmethod
    def unflatten(cls, module: NBMixture, values: np.ndarray) -> _Statistics:
        """Return the sums in :meth:`flatten`'s vector ``values``, on the mixture's device."""
        template = cls.zeros(module)
        parts, start = {}, 0
        for field in fields(template):
            zeros = getattr(template, field.name)
            part = torch.as_tensor(values[start : start + zeros.numel()], device=zeros.device)
            parts[field.name] = part.reshape(zeros.shape)
            start += zeros.numel()
        return cls(**parts)


def _accumulate(
    module: NBMixture,
    stats: _Statistics,
    x: torch.Tensor,
    softpluses: list[torch.Tensor],
    batch: torch.Tensor,
    responsibilities: torch.Tensor,
    tables: list,
) -> None:
    """Add one chunk's M-step sums for every cluster (cells with negligible weight skipped)."""
    batch = batch.view(-1)
    for k in range(module.n_clusters):
        keep = torch.nonzero(responsibilities[:, k] > _MIN_RESPONSIBILITY).view(-1)
        if keep.numel() == 0:
            continue
        r = responsibilities[keep, k]
        xk = x[keep]
        t_index = k if module.dispersion == "cluster-gene" else 0
        log_theta = module.log_theta[t_index : t_index + 1]
        theta = torch.exp(log_theta)
        softplus = softpluses[k][keep]
        sigma = -torch.expm1(-softplus)  # sigmoid(d) = 1 - exp(-softplus(d))
        x_theta = xk + theta
        grad_mu = xk - x_theta * sigma
        curv_mu = x_theta * sigma * (1.0 - sigma)
        first, second = _digamma_differences(xk, theta, tables[t_index])
        grad_theta = theta * (first - softplus) - grad_mu
        curv_theta = (
            2.0 * theta * sigma - curv_mu - theta * softplus + theta * first + theta**2 * second
        )
        stats.weights[k] += r.sum().double()
        stats.grad_mu[k] += (r @ grad_mu).double()
        stats.curv_mu[k] += (r @ curv_mu).double()
        stats.grad_theta[t_index] += (r @ grad_theta).double()
        stats.curv_theta[t_index] += (r @ curv_theta).double()
        if module.n_batch > 1:
            by_batch = torch.zeros(module.n_batch, len(keep), dtype=r.dtype, device=r.device)
            by_batch[batch[keep], torch.arange(len(keep), device=r.device)] = r
            stats.grad_batch += (by_batch @ grad_mu).double()
            stats.curv_batch += (by_batch @ curv_mu).double()


class _PassStatistics(_ChunkFunction):
    """What one EM pass adds up over the chunks: the M step's sums and the log-likelihood.

    Called on a chunk, it runs the E step and returns :meth:`_Statistics.flatten`'s vector
    followed by the chunk's summed marginal log-likelihood.
    """

    @property
    def size(self) -> int:
        """Number of values per chunk."""
        return int(_Statistics.zeros(self.module).flatten().numel()) + 1

    @torch.no_grad()
    def __call__(self, counts, log_size: np.ndarray, batch_index: np.ndarray) -> torch.Tensor:
        x, log_size, batch = self.tensors(counts, log_size, batch_index)
        r, marginal, softpluses = _e_step(self.module, x, log_size, batch, self.tables)
        stats = _Statistics.zeros(self.module)
        _accumulate(self.module, stats, x, softpluses, batch, r, self.tables)
        return torch.cat([stats.flatten(), marginal.double().sum().reshape(1)])


@torch.no_grad()
def _newton_update(module: NBMixture, stats: _Statistics, update_batch: bool) -> None:
    """Apply the M step's updates from the accumulated sums."""
    dtype = module.log_mu.dtype
    weights = stats.weights.clamp(min=MIN_WEIGHT)
    module.logits_pi.copy_(torch.log(weights / weights.sum()).to(dtype))
    if update_batch:
        step = stats.grad_batch[1:] / (stats.curv_batch[1:] + _CURVATURE_FLOOR)
        module.batch_effect.add_(step.clamp(-_MAX_LOG_MU_STEP, _MAX_LOG_MU_STEP).to(dtype))
        return
    step_mu = stats.grad_mu / (stats.curv_mu + _CURVATURE_FLOOR)
    step_mu = step_mu.clamp(-_MAX_LOG_MU_STEP, _MAX_LOG_MU_STEP)
    module.log_mu.add_(step_mu.to(dtype)).clamp_(min=_LOG_MU_MIN)
    # Newton where the curvature is negative (locally concave), a capped gradient step elsewhere.
    concave = stats.curv_theta < 0
    step_theta = torch.where(
        concave, -stats.grad_theta / torch.where(concave, stats.curv_theta, -1.0), 0.0
    )
    gradient_step = _LOG_THETA_GRADIENT_STEP * torch.sign(stats.grad_theta)
    step_theta = torch.where(concave, step_theta, gradient_step)
    module.log_theta.add_(step_theta.clamp(-_MAX_LOG_THETA_STEP, _MAX_LOG_THETA_STEP).to(dtype))
    module.log_theta.clamp_(_LOG_THETA_MIN, _LOG_THETA_MAX)


@dataclass(frozen=True)
class EMFit:
    """Outcome of :func:`fit_em`.

    Attributes
    ----------
    log_likelihood
        Marginal log-likelihood of the data at the returned parameters.
    history
        Log-likelihood at the start of every iteration.
    n_iterations
        Iterations run.
    converged
        Whether the relative change fell below the tolerance.
    """

    log_likelihood: float
    history: tuple[float, ...]
    n_iterations: int
    converged: bool


@torch.no_grad()
def fit_em(
    module: NBMixture,
    chunks: CountChunks,
    responsibilities: np.ndarray,
    max_iter: int = 500,
    tol: float = 1e-5,
    progress_bar: bool = True,
    description: str = "EM",
) -> EMFit:
    """Fit the mixture's parameters by batch EM from initial responsibilities.

    Parameters
    ----------
    module
        The mixture (updated in place).
    chunks
        The cells.
    responsibilities
        Initial memberships, shape ``(n_cells, K)``.
    max_iter
        Maximum number of iterations (each one pass over the data).
    tol
        Stop when ``|ll_t - ll_{t-1}| <= tol * |ll_t|``.
    progress_bar
        Show a progress bar.
    description
        Progress bar label.

    Returns
    -------
    The fit's log-likelihood and trace.
    """
    module.eval()
    initialize_parameters(module, chunks, responsibilities)
    history: list[float] = []
    converged = False
    for iteration in track(range(max_iter), description=description, disable=not progress_bar):
        statistics = _PassStatistics(module, chunks.dtype)
        sums = chunks.sum(statistics, size=statistics.size)
        stats, total = _Statistics.unflatten(module, sums[:-1]), float(sums[-1])
        history.append(total)
        if not math.isfinite(total):
            # NaN compares False with everything: without this check EM would run every pass
            raise FloatingPointError(
                f"EM produced a non-finite log-likelihood ({total}) at iteration {iteration}."
            )
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
            converged = True
            break
        if iteration == max_iter - 1:
            break
        _newton_update(module, stats, update_batch=module.n_batch > 1 and iteration % 2 == 1)
    return EMFit(history[-1], tuple(history), len(history), converged)
