"""Mutual information between two embeddings of the same cells."""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

_MIN_CELLS = 10  # fewer cells give no usable covariance, neighbours or negatives
_METHODS = ("gaussian", "ksg", "infonce")  # the estimators of mutual_information()


@dataclass(frozen=True)
class MutualInformation:
    """Estimate of the mutual information between two embeddings, in nats.

    Attributes
    ----------
    estimate
        Point estimate on all cells (for ``"infonce"`` with a learned critic: on the held-out
        evaluation half).
    ci_low, ci_high
        Resampling interval at level ``confidence`` (see :func:`mutual_information`);
        NaN when ``n_bootstrap=0``.
    method
        ``"gaussian"``, ``"ksg"`` or ``"infonce"``.
    n
        Number of cells the function was given.
    upper_bound
        ``"infonce"`` only: ``log N`` of the evaluation set, which the estimate can never exceed;
        ``None`` for the other methods.
    """

    estimate: float
    ci_low: float
    ci_high: float
    method: str
    n: int
    upper_bound: float | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}.")
        if self.ci_low > self.ci_high:
            raise ValueError(f"ci_low ({self.ci_low}) exceeds ci_high ({self.ci_high}).")


def mutual_information(
    a: np.ndarray,
    b: np.ndarray,
    method: Literal["gaussian", "ksg", "infonce"] = "gaussian",
    *,
    k: int = 3,
    temperature: float = 10.0,
    critic: Literal["cosine", "learned"] = "cosine",
    batch_size: int = 1024,
    n_steps: int = 300,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> MutualInformation:
    r"""Mutual information :math:`I(A; B)` between two embeddings of the same cells.

    Parameters
    ----------
    a
        Array of shape ``(n_cells, d_a)``, e.g. one model's latent space.
    b
        Array of shape ``(n_cells, d_b)`` with the same cells in the same order.
    method
        ``"gaussian"``: closed form for jointly Gaussian variables, from a shrunk covariance;
        ``"ksg"``: Kraskov-Stögbauer-Grassberger k-nearest-neighbour estimator;
        ``"infonce"``: contrastive lower bound, capped at ``log N``.
    k
        ``"ksg"``: number of neighbours in the joint space.
    temperature
        ``"infonce"`` with ``critic="cosine"``: scale of the cosine scores. Cosines lie in
        ``[-1, 1]``, so the scores span ``2 * temperature``; with the default 10 a matching
        pair can outweigh about ``e^20`` unrelated ones, enough not to saturate the bound
        below ``log N`` for any realistic ``N`` while keeping the softmax smooth.
    critic
        ``"infonce"``: ``"cosine"`` (no training; needs ``d_a == d_b``, both embeddings in a
        shared space) or ``"learned"`` (bilinear critic fitted on half the cells, evaluated on
        the other half; any ``d_a``, ``d_b``).
    batch_size
        ``"infonce"``: rows of the score matrix computed at once (memory ``batch_size * N``),
        also the minibatch size when training the learned critic.
    n_steps
        ``"infonce"`` with ``critic="learned"``: Adam steps.
    n_bootstrap
        Number of resamples for the interval; 0 skips it (interval NaN).
    confidence
        Level of the interval, in ``(0, 1)``.
    seed
        Seed for resampling, the train/evaluation split and the critic's minibatches.

    Returns
    -------
    :class:`MutualInformation` with the estimate in nats and its interval.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(5000, 1))
    >>> y = 0.8 * x + 0.6 * rng.normal(size=(5000, 1))  # rho = 0.8: I = -log(0.36) / 2
    >>> res = mutual_information(x, y, n_bootstrap=50)
    >>> round(res.estimate, 1), round(-0.5 * float(np.log(1 - 0.8**2)), 1)
    (0.5, 0.5)

    Notes
    -----
    ``"gaussian"``, ``"ksg"`` and the learned critic first standardise each column to mean 0
    and variance 1 (mutual information is invariant to this; it makes the shrinkage target,
    the max-norm and the critic's Adam steps treat all columns alike). The cosine critic
    uses the embeddings as given, since their shared geometry is the point. Constant columns
    are rejected.

    **gaussian.** For jointly Gaussian :math:`(A, B)` with canonical correlations
    :math:`\rho_i`,

    .. math:: I(A; B) = -\tfrac12 \sum_i \log(1 - \rho_i^2),

    computed as follows. Each block is centred, rotated to its principal axes and scaled to
    unit variance (directions of numerically zero variance dropped), so that the joint sample
    covariance of the whitened coordinates is :math:`\begin{pmatrix} I & C \\ C^\top & I
    \end{pmatrix}`, whose cross block :math:`C` has the sample canonical correlations as
    singular values. This joint covariance is then shrunk with Ledoit-Wolf
    [1]_ towards its scaled identity target, which is
    :math:`I` itself here: the diagonal blocks are unchanged and the cross block becomes
    :math:`(1 - \delta) C`, i.e. *every canonical correlation is multiplied by*
    :math:`1 - \delta`, with :math:`\delta \in [0, 1]` the Ledoit-Wolf intensity. This
    keeps the estimate finite when ``d_a + d_b`` approaches or exceeds ``n`` (sample
    canonical correlations then tend to 1 and :math:`\delta` to 1) and counters the upward
    bias of sample canonical correlations; for ``n`` much larger than ``d``, :math:`\delta`
    is of order :math:`d / n`. Shrinking in the whitened coordinates, rather than the raw
    covariance, makes the estimate invariant to invertible linear maps of either side
    (shrinking an ill-conditioned raw covariance towards the identity would distort its
    small-variance directions; see the Interpretation section of the benchmarks in the
    documentation). For non-Gaussian data this is the information carried by the linear
    (second-order) dependence only, and can be far from
    :math:`I` after non-linear monotone transforms (see the tests).

    **ksg.** Estimator 1 of Kraskov, Stögbauer and Grassberger [2]_:

    .. math:: \hat I = \psi(k) + \psi(N) - \langle \psi(n_a + 1) + \psi(n_b + 1) \rangle,

    where :math:`\varepsilon_i` is the max-norm distance from cell :math:`i` to its
    :math:`k`-th neighbour in the joint space, and :math:`n_a(i)`, :math:`n_b(i)` count the
    other cells strictly closer than :math:`\varepsilon_i` in each marginal (max-norm). It is
    consistent for any continuous distribution and invariant to monotone transforms of single
    columns up to finite-sample effects, but biased downward when the joint dimension is
    high and the MI large (measurements in the Interpretation section of the benchmarks in
    the documentation). Use it for low-dimensional embeddings or for comparisons at equal
    dimension, not as an absolute value in high dimension.

    **infonce.** With scores :math:`S_{ij}` between :math:`a_i` and :math:`b_j`,

    .. math:: \hat I = \log N - \frac1N \sum_i \Bigl[-S_{ii} + \log \sum_j e^{S_{ij}}\Bigr]
              \le \log N,

    a lower bound on :math:`I` for any critic [3]_ [4]_, and never more
    than :math:`\log N` (since :math:`\log\sum_j e^{S_{ij}} \ge S_{ii}`), so it saturates
    for large MI. ``critic="cosine"`` uses :math:`S_{ij} = \tau \cos(a_i, b_j)`;
    ``critic="learned"`` fits :math:`S_{ij} = a_i^\top W b_j` with Adam on a random half of
    the cells (InfoNCE loss on minibatches) and evaluates on the other half, whose size is
    the :math:`N` above. The score matrix is built ``batch_size`` rows at a time.

    **Interval.** ``"gaussian"``: percentile interval of the estimate recomputed on
    ``n_bootstrap`` resamples of the cells with replacement. ``"infonce"``: the per-cell terms
    :math:`-S_{ii} + \log\sum_j e^{S_{ij}}` are resampled with replacement (the negatives and
    the learned critic are held fixed, so training variability is not included), which costs
    nothing beyond the point estimate. ``"ksg"``: resampling with replacement duplicates
    cells, giving zero-distance neighbours that break the estimator, so the interval uses
    half-sampling instead: ``n_bootstrap`` subsamples of ``m = n // 2`` cells *without*
    replacement (``m`` capped at 2,000 cells to keep it cheap when ``n`` is large). For
    ``m = n / 2`` the finite-population factor :math:`1 - m/n` makes the spread of a
    half-sample mean equal to that of the full-sample mean; for smaller ``m`` the spread is
    rescaled by :math:`\sqrt{(m/n) / (1 - m/n)}`. Because KSG's bias depends on the sample
    size, the rescaled half-sample estimates are re-centred on the full-sample estimate (their
    mean shifted to it) before taking percentiles.

    References
    ----------
    .. [1] O. Ledoit and M. Wolf, "A well-conditioned estimator for large-dimensional
       covariance matrices", J. Multivar. Anal. 88, 365-411 (2004).
    .. [2] A. Kraskov, H. Stögbauer and P. Grassberger, "Estimating mutual information",
       Phys. Rev. E 69, 066138 (2004).
    .. [3] A. van den Oord, Y. Li and O. Vinyals, "Representation learning with contrastive
       predictive coding", arXiv:1807.03748 (2018).
    .. [4] B. Poole, S. Ozair, A. van den Oord, A. Alemi and G. Tucker, "On variational bounds
       of mutual information", ICML (2019).
    """
    raw_a, raw_b = _validate(a, b)
    a, b = _standardise(raw_a, "a"), _standardise(raw_b, "b")
    n = a.shape[0]
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if not (isinstance(n_bootstrap, numbers.Integral) and n_bootstrap >= 0):
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    rng = np.random.default_rng(seed)
    tail = 100.0 * (1.0 - confidence) / 2.0
    nan = float("nan")

    if method == "gaussian":
        estimate = _gaussian(a, b)
        draws = [_gaussian(a[idx], b[idx]) for idx in _resamples(rng, n, n, n_bootstrap, True)]
        low, high = np.percentile(draws, [tail, 100 - tail]) if draws else (nan, nan)
        return MutualInformation(float(estimate), float(low), float(high), method, n)

    if method == "ksg":
        if not (isinstance(k, numbers.Integral) and 1 <= k):
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        m = min(n // 2, 2000)
        if k >= m - 1:
            raise ValueError(
                f"k={k} is too large for {n} cells: need k < n // 2 - 1 so that the half-samples "
                "used for the interval have more than k neighbours."
            )
        estimate = _ksg(a, b, k)
        draws = np.array([_ksg(a[idx], b[idx], k) for idx in _resamples(rng, n, m, n_bootstrap)])
        if draws.size:
            scale = np.sqrt((m / n) / (1.0 - m / n))
            centred = estimate + scale * (draws - draws.mean())
            low, high = np.percentile(centred, [tail, 100 - tail])
        else:
            low, high = nan, nan
        return MutualInformation(float(estimate), float(low), float(high), method, n)

    # infonce
    if critic not in ("cosine", "learned"):
        raise ValueError(f"critic must be 'cosine' or 'learned', got {critic!r}.")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if critic == "cosine":
        if a.shape[1] != b.shape[1]:
            raise ValueError(
                f"critic='cosine' needs embeddings in a shared space (d_a == d_b); got "
                f"d_a={a.shape[1]}, d_b={b.shape[1]}. Use critic='learned'."
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}.")
        a_eval = temperature * raw_a / np.linalg.norm(raw_a, axis=1, keepdims=True).clip(1e-300)
        b_eval = raw_b / np.linalg.norm(raw_b, axis=1, keepdims=True).clip(1e-300)
    else:
        if not (isinstance(n_steps, numbers.Integral) and n_steps >= 1):
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
        order = rng.permutation(n)
        train, held_out = order[: n // 2], order[n // 2 :]
        weight = _fit_bilinear_critic(a[train], b[train], batch_size, n_steps, seed)
        a_eval, b_eval = a[held_out] @ weight, b[held_out]
    losses = _infonce_losses(a_eval, b_eval, batch_size)
    log_n = float(np.log(len(losses)))
    estimate = min(log_n - losses.mean(), log_n)
    if n_bootstrap:
        idx = rng.integers(0, len(losses), size=(n_bootstrap, len(losses)))
        draws = np.minimum(log_n - losses[idx].mean(axis=1), log_n)
        low, high = np.percentile(draws, [tail, 100 - tail])
    else:
        low, high = nan, nan
    return MutualInformation(float(estimate), float(low), float(high), method, n, log_n)


def _validate(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and values; return both as float arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"a and b must be 2-D with the same number of rows; got {a.shape} and {b.shape}."
        )
    if a.shape[1] == 0 or b.shape[1] == 0:
        raise ValueError(f"a and b need at least one column; got {a.shape} and {b.shape}.")
    if a.shape[0] < _MIN_CELLS:
        raise ValueError(f"Need at least {_MIN_CELLS} cells, got {a.shape[0]}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite (no NaN or infinite values).")
    return a, b


def _standardise(x: np.ndarray, name: str) -> np.ndarray:
    sd = x.std(axis=0)
    constant = np.flatnonzero(sd <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0)))
    if constant.size:
        raise ValueError(
            f"{name} has constant columns {constant[:5].tolist()}; they carry no information. "
            "Drop them first."
        )
    return (x - x.mean(axis=0)) / sd


def _resamples(rng: np.random.Generator, n: int, m: int, count: int, replace: bool = False):
    for _ in range(count):
        yield rng.choice(n, size=m, replace=replace)


def _gaussian(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.covariance import ledoit_wolf_shrinkage

    white_a, white_b = _whiten(a), _whiten(b)
    cross = white_a.T @ white_b / a.shape[0]
    delta = ledoit_wolf_shrinkage(np.hstack([white_a, white_b]), assume_centered=True)
    rho = (1.0 - delta) * np.linalg.svd(cross, compute_uv=False)
    rho = np.clip(rho, 0.0, 1.0 - 1e-15)
    return float(-0.5 * np.log1p(-(rho**2)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def _whiten(x: np.ndarray) -> np.ndarray:
    """Principal components of the centred ``x`` scaled to unit variance (numerical rank)."""
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    rank = int((s > s.max() * max(x.shape) * np.finfo(float).eps).sum())
    return u[:, :rank] * np.sqrt(x.shape[0])


def _ksg(a: np.ndarray, b: np.ndarray, k: int) -> float:
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    n = a.shape[0]
    joint = np.hstack([a, b])
    # k + 1 neighbours: the first is the cell itself, at distance 0
    distances, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    # strictly closer than the k-th neighbour: shrink the radius by one float step
    radius = np.nextafter(distances[:, -1], 0.0)
    # the counts include the cell itself, so they already equal n_a + 1 and n_b + 1
    count_a = cKDTree(a).query_ball_point(a, r=radius, p=np.inf, return_length=True)
    count_b = cKDTree(b).query_ball_point(b, r=radius, p=np.inf, return_length=True)
    return float(digamma(k) + digamma(n) - np.mean(digamma(count_a) + digamma(count_b)))


def _infonce_losses(queries: np.ndarray, keys: np.ndarray, batch_size: int) -> np.ndarray:
    """Per-row ``-S_ii + logsumexp_j S_ij`` with ``S = queries @ keys.T``, by row batches."""
    from scipy.special import logsumexp

    losses = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], batch_size):
        stop = min(start + batch_size, queries.shape[0])
        scores = queries[start:stop] @ keys.T
        positives = scores[np.arange(stop - start), np.arange(start, stop)]
        losses[start:stop] = logsumexp(scores, axis=1) - positives
    return np.maximum(losses, 0.0)  # >= 0 exactly; clip rounding error


def _fit_bilinear_critic(
    a: np.ndarray, b: np.ndarray, batch_size: int, n_steps: int, seed: int
) -> np.ndarray:
    """Fit ``W`` in ``S_ij = a_i^T W b_j`` by minimising the InfoNCE loss with Adam."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    a_t = torch.as_tensor(a, dtype=torch.float32)
    b_t = torch.as_tensor(b, dtype=torch.float32)
    weight = torch.zeros(a.shape[1], b.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=0.05)
    size = min(batch_size, a.shape[0])
    targets = torch.arange(size)
    for _ in range(n_steps):
        idx = torch.randperm(a.shape[0], generator=generator)[:size]
        scores = a_t[idx] @ weight @ b_t[idx].T
        loss = torch.nn.functional.cross_entropy(scores, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return weight.detach().double().numpy()
