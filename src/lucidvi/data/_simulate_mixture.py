"""Counts simulated from a mixture of negative binomials with known clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

_CHUNK_ROWS = 10_000


def _draw_counts(rng, means: np.ndarray, shapes: np.ndarray, s: float) -> np.ndarray:
    """Poisson-Gamma counts for rows of means and Gamma shapes; all-zero rows are redrawn."""
    counts = np.zeros(means.shape, dtype=np.float32)
    todo = np.arange(len(means))
    while todo.size:
        rates = rng.gamma(shapes[todo], means[todo] / shapes[todo])
        counts[todo] = rng.poisson(s * rates)
        todo = todo[counts[todo].sum(axis=1) == 0]
    return counts


def simulate_nb_mixture(
    n: int = 100,
    p: int = 500,
    k: int = 4,
    s: float = 1e4,
    seed: int = 0,
) -> AnnData:
    r"""Simulate counts from a Poisson-Gamma (negative binomial) mixture with planted clusters.

    Every cell belongs to one of ``k`` clusters (one-hot memberships, drawn uniformly). Cluster
    ``c`` has, per gene ``j``, a mean ``mu_cj`` with ``log mu_cj ~ U(-12, -6)`` and an inverse
    dispersion ``theta_cj = 1 / phi_cj`` with ``log theta_cj ~ U(0, 4)``. Counts are

    .. math::

        \lambda_{ij} \sim \mathrm{Gamma}(\mathrm{shape}\ \theta_{cj},
            \mathrm{rate}\ \theta_{cj} / \mu_{cj}), \quad
        x_{ij} \sim \mathrm{Poisson}(s\, \lambda_{ij}),

    that is ``x_ij ~ NB(mean s mu_cj, inverse dispersion theta_cj)``. With the default
    ``s = 1e4`` the means range from 0.06 to 25 counts per gene. Cells whose counts are all
    zero are redrawn.

    Parameters
    ----------
    n
        Number of cells.
    p
        Number of genes.
    k
        Number of clusters.
    s
        Size factor shared by all cells (the ``s_i`` of :class:`~lucidvi.model.MixtureVI`).
    seed
        Seed of the random generator.

    Returns
    -------
    AnnData with counts (sparse CSR) in ``X`` and ``layers["counts"]``, and the truth:

    - ``obs["cluster"]``: the planted cluster (categorical ``"0" ... "k-1"``);
    - ``obs["size_factor"]``: ``s``;
    - ``uns["nb_mixture"]``: ``means`` (``k x p``, the ``mu``), ``inverse_dispersions``
      (``k x p``, the ``theta``), ``weights`` (uniform) and the parameters.

    Examples
    --------
    >>> adata = lucidvi.data.simulate_nb_mixture(n=100, p=500, k=4, seed=1)
    >>> adata.obs["cluster"].value_counts()
    """
    if k < 1 or n < 1 or p < 1:
        raise ValueError(f"n, p and k must be positive, got n={n}, p={p}, k={k}.")
    if not s > 0:
        raise ValueError(f"The size factor s must be positive, got {s}.")
    rng = np.random.default_rng(seed)
    means = np.exp(rng.uniform(-12.0, -6.0, size=(k, p)))
    inverse_dispersions = np.exp(rng.uniform(0.0, 4.0, size=(k, p)))
    clusters = rng.integers(k, size=n)
    parts = []
    for start in range(0, n, _CHUNK_ROWS):  # row chunks keep memory low for large n
        members = clusters[start : start + _CHUNK_ROWS]
        counts = _draw_counts(rng, means[members], inverse_dispersions[members], s)
        parts.append(sp.csr_matrix(counts))
    matrix = sp.vstack(parts, format="csr")

    adata = AnnData(
        X=matrix,
        obs=pd.DataFrame(
            {
                "cluster": pd.Categorical(clusters.astype(str), [str(c) for c in range(k)]),
                "size_factor": np.full(n, float(s)),
            },
            index=[f"cell_{i}" for i in range(n)],
        ),
        var=pd.DataFrame(index=[f"gene_{j}" for j in range(p)]),
    )
    adata.layers["counts"] = matrix.copy()
    adata.uns["nb_mixture"] = {
        "means": means,
        "inverse_dispersions": inverse_dispersions,
        "weights": np.full(k, 1.0 / k),
        "size_factor": float(s),
        "seed": int(seed),
    }
    return adata
