"""Counts simulated from a linearly decoded negative binomial model with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData


def simulate_linear(
    n_cells: int = 2000,
    n_genes: int = 500,
    n_factors: int = 10,
    *,
    genes_per_factor: int | None = None,
    factor_scales: np.ndarray | list[float] | None = None,
    loading_range: tuple[float, float] = (0.5, 1.0),
    library_size: float = 2000.0,
    library_log_sd: float = 0.3,
    inverse_dispersion: float = 10.0,
    n_batches: int = 1,
    batch_effect_sd: float = 0.5,
    seed: int = 0,
) -> AnnData:
    r"""Simulate counts from a linear-decoder negative binomial model with planted factors.

    Each factor ``k`` has a scale ``s_k`` and a block of ``genes_per_factor`` genes of its own:
    the first half of the block is loaded positively, the second half negatively, with
    magnitudes drawn uniformly from ``loading_range``; all other loadings are zero. Then

    .. math::

        z_{ik} \sim N(0, s_k^2), \quad
        \rho_i = \mathrm{softmax}(W z_i + b + \beta_{batch(i)}), \quad
        x_{ig} \sim \mathrm{NB}(\mathrm{mean} = l_i \rho_{ig}, \theta),

    with gene baselines ``b_g ~ N(0, 1)``, batch effects ``beta ~ N(0, batch_effect_sd^2)``
    per batch and gene, and library sizes ``log l_i ~ N(log library_size, library_log_sd^2)``.
    This is the generative model of :class:`~lucidvi.model.LinearVI` (without batch
    normalisation), so its loadings are identifiable up to an invertible linear map of the
    factors. Cells whose counts are all zero are redrawn from the same distribution.

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes.
    n_factors
        Number of planted factors.
    genes_per_factor
        Size of each factor's gene block (default: ``n_genes // (2 * n_factors)``, so half the
        genes load on no factor); ``n_factors * genes_per_factor <= n_genes``.
    factor_scales
        Standard deviation of each factor (default: evenly spaced from 1.5 down to 0.3), so the
        factors have a known order of importance.
    loading_range
        Range of the absolute values of non-zero loadings.
    library_size
        Median library size.
    library_log_sd
        Standard deviation of the log library size.
    inverse_dispersion
        NB inverse dispersion ``theta`` of every gene (smaller is noisier).
    n_batches
        Number of batches; ``obs["batch"]`` holds them when more than one.
    batch_effect_sd
        Standard deviation of the per-batch, per-gene logit shifts.
    seed
        Seed of the random generator.

    Returns
    -------
    AnnData with integer counts (CSR) in ``X`` and ``layers["counts"]``, and the truth:

    - ``obsm["true_factors"]``: ``z``, cells x factors;
    - ``varm["true_loadings"]``: ``W``, genes x factors;
    - ``var["true_baseline"]``: ``b``; ``var["true_factor"]``: the factor whose block holds
      the gene (``-1`` for none); ``var["true_sign"]``: ``+1``/``-1``/``0``;
    - ``obs["library_size"]``: ``l``; ``obs["batch"]`` (categorical) with ``n_batches > 1``;
    - ``uns["simulation"]``: the factor scales, the gene blocks
      (``{"Z_k": {"positive": [...], "negative": [...]}}``) and every argument.

    Examples
    --------
    >>> import lucidvi
    >>> adata = lucidvi.data.simulate_linear(n_cells=500, n_genes=200, n_factors=5, seed=1)
    >>> adata.varm["true_loadings"].shape
    (200, 5)
    """
    genes_per_factor = n_genes // (2 * n_factors) if genes_per_factor is None else genes_per_factor
    if n_factors < 1 or genes_per_factor < 2:
        raise ValueError(
            f"Need n_factors >= 1 and genes_per_factor >= 2 (got {n_factors}, "
            f"{genes_per_factor}); use more genes or fewer factors."
        )
    if n_factors * genes_per_factor > n_genes:
        raise ValueError(
            f"n_factors * genes_per_factor = {n_factors * genes_per_factor} exceeds n_genes = "
            f"{n_genes}; lower genes_per_factor."
        )
    scales = (
        np.linspace(1.5, 0.3, n_factors) if factor_scales is None else np.asarray(factor_scales)
    )
    if scales.shape != (n_factors,) or np.any(scales <= 0):
        raise ValueError(f"factor_scales must hold {n_factors} positive values.")
    rng = np.random.default_rng(seed)

    loadings = np.zeros((n_genes, n_factors))
    factor_of_gene = np.full(n_genes, -1)
    sign_of_gene = np.zeros(n_genes, dtype=int)
    blocks = {}
    block_genes = rng.permutation(n_genes)[: n_factors * genes_per_factor]
    half = genes_per_factor // 2
    for k in range(n_factors):
        genes = block_genes[k * genes_per_factor : (k + 1) * genes_per_factor]
        signs = np.where(np.arange(genes_per_factor) < half, 1, -1)
        loadings[genes, k] = signs * rng.uniform(*loading_range, size=genes_per_factor)
        factor_of_gene[genes], sign_of_gene[genes] = k, signs
        blocks[f"Z_{k}"] = {"positive": genes[signs > 0], "negative": genes[signs < 0]}

    factors = rng.normal(size=(n_cells, n_factors)) * scales
    baseline = rng.normal(size=n_genes)
    batch = rng.integers(n_batches, size=n_cells)
    batch_effects = rng.normal(scale=batch_effect_sd, size=(n_batches, n_genes))
    batch_effects[0] = 0.0
    logits = factors @ loadings.T + baseline + batch_effects[batch]
    proportions = np.exp(logits - logits.max(1, keepdims=True))
    proportions /= proportions.sum(1, keepdims=True)
    library = np.exp(rng.normal(np.log(library_size), library_log_sd, size=n_cells))
    mean = library[:, None] * proportions

    counts = _negative_binomial(rng, mean, inverse_dispersion)
    for _ in range(100):
        empty = np.flatnonzero(counts.sum(1) == 0)
        if not empty.size:
            break
        counts[empty] = _negative_binomial(rng, mean[empty], inverse_dispersion)

    var_names = [f"gene_{g:04d}" for g in range(n_genes)]
    gene_name = np.asarray(var_names)
    obs = pd.DataFrame({"library_size": library}, index=[f"cell_{i:05d}" for i in range(n_cells)])
    if n_batches > 1:
        obs["batch"] = pd.Categorical([f"batch_{b}" for b in batch])
    var = pd.DataFrame(
        {"true_baseline": baseline, "true_factor": factor_of_gene, "true_sign": sign_of_gene},
        index=var_names,
    )
    matrix = sp.csr_matrix(counts.astype(np.int32))
    adata = AnnData(X=matrix, obs=obs, var=var)
    adata.layers["counts"] = matrix.copy()
    adata.obsm["true_factors"] = factors
    adata.varm["true_loadings"] = loadings
    adata.uns["simulation"] = {
        "model": "linear",
        "factor_scales": scales,
        "gene_blocks": {
            name: {sign: gene_name[genes].tolist() for sign, genes in block.items()}
            for name, block in blocks.items()
        },
        "n_factors": n_factors,
        "genes_per_factor": genes_per_factor,
        "loading_range": list(loading_range),
        "library_size": library_size,
        "library_log_sd": library_log_sd,
        "inverse_dispersion": inverse_dispersion,
        "n_batches": n_batches,
        "batch_effect_sd": batch_effect_sd,
        "seed": seed,
    }
    return adata


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, theta: float) -> np.ndarray:
    """Draw NB(mean, theta) counts as a Gamma-Poisson mixture."""
    return rng.poisson(rng.gamma(theta, mean / theta))
