"""Array-in maths behind the interpretation results, testable without a model."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp


def centered(embedding: np.ndarray) -> np.ndarray:
    """Subtract each column's mean."""
    return embedding - embedding.mean(axis=0, keepdims=True)


def numerical_rank(embedding: np.ndarray) -> int:
    """Rank of the centred embedding (numpy's SVD tolerance, relative to the largest value).

    Parameters
    ----------
    embedding
        Cells x dimensions.

    Returns
    -------
    The number of linearly independent (centred) dimensions.
    """
    return int(np.linalg.matrix_rank(centered(np.asarray(embedding, dtype=np.float64))))


def regression_effects(expression, embedding: np.ndarray) -> np.ndarray:
    """Least-squares effects of the embedding's dimensions on every gene (with intercept).

    ``beta[g, k]`` is the change of gene ``g`` per unit increase of dimension ``k`` with the
    other dimensions held fixed: ``beta = (Zc' Zc)^{-1} Zc' Y`` for the centred embedding
    ``Zc``. ``Y`` is never centred or densified (``Zc' 1 = 0`` makes centring it unnecessary).

    Parameters
    ----------
    expression
        Cells x genes, dense or sparse.
    embedding
        Cells x dimensions.

    Returns
    -------
    Genes x dimensions effects.

    Raises
    ------
    ValueError
        If the embedding's dimensions are linearly dependent (see
        :class:`~lucidvi.interpretation.LatentReport`).
    """
    zc = centered(np.asarray(embedding, dtype=np.float64))
    rank = np.linalg.matrix_rank(zc)
    if rank < zc.shape[1]:
        raise ValueError(
            f"The embedding's {zc.shape[1]} dimensions are linearly dependent (rank {rank}), so "
            f"per-dimension effects are not defined. Inspect them with LatentReport and drop "
            f"redundant dimensions."
        )
    cross = expression.T @ zc if sp.issparse(expression) else np.asarray(expression).T @ zc
    return np.linalg.solve(zc.T @ zc, np.asarray(cross).T).T


def standardize_effects(
    effects: np.ndarray, latent_sd: np.ndarray, gene_sd: np.ndarray
) -> np.ndarray:
    """Turn per-unit effects into standardised loadings: gene SDs per latent SD.

    ``S[g, k] = effects[g, k] * latent_sd[k] / gene_sd[g]``, and 0 for genes without variance.

    Parameters
    ----------
    effects
        Genes x dimensions, change of each gene per unit of each dimension.
    latent_sd
        Standard deviation of each dimension.
    gene_sd
        Standard deviation of each gene.

    Returns
    -------
    Genes x dimensions standardised loadings.
    """
    gene_sd = np.asarray(gene_sd, dtype=np.float64)
    safe = np.where(gene_sd > 0, gene_sd, 1.0)
    scaled = effects * np.asarray(latent_sd)[None, :] / safe[:, None]
    return np.where(gene_sd[:, None] > 0, scaled, 0.0)


def dimension_importance(
    effects: np.ndarray, covariance: np.ndarray, mode: Literal["full", "diag"] = "full"
) -> np.ndarray:
    r"""Variance of the expression that each dimension accounts for, summed over genes.

    With effects ``W`` (genes x dims) and the embedding's covariance ``\Sigma``, the linear
    part of the expression ``W z`` has total variance ``tr(W \Sigma W') = \sum_k (W'W\Sigma)_{kk}``.

    - ``"full"``: ``(W'W\Sigma)_{kk}``, the exact additive share of dimension ``k`` (covariance
      terms split evenly between the two dimensions; a share can be negative when correlated
      dimensions cancel).
    - ``"diag"``: ``(W'W)_{kk} \Sigma_{kk}``, the variance dimension ``k`` would account for
      alone (equal to ``"full"`` when the dimensions are uncorrelated).

    Parameters
    ----------
    effects
        Genes x dimensions.
    covariance
        Dimensions x dimensions covariance of the embedding.
    mode
        ``"full"`` or ``"diag"``.

    Returns
    -------
    One importance per dimension.
    """
    gram = effects.T @ effects
    if mode == "full":
        return np.einsum("kl,lk->k", gram, covariance)
    if mode == "diag":
        return np.diag(gram) * np.diag(covariance)
    raise ValueError(f"mode must be 'full' or 'diag', got {mode!r}.")


def n_dims_to_cutoff(ratios_in_order: np.ndarray, cutoff: float) -> int:
    """How many dimensions, taken in order, reach a cumulative share of ``cutoff``.

    Parameters
    ----------
    ratios_in_order
        Shares (summing to one) sorted from the most to the least important.
    cutoff
        Cumulative share to reach, in ``(0, 1]``.

    Returns
    -------
    The smallest ``n`` with ``sum(ratios_in_order[:n]) >= cutoff`` (all dimensions if none).
    """
    reached = np.flatnonzero(np.cumsum(ratios_in_order) >= cutoff - 1e-12)
    return int(reached[0]) + 1 if reached.size else len(ratios_in_order)


def residualize_columns(loadings: np.ndarray) -> np.ndarray:
    """Remove from each column its least-squares projection on the other columns.

    What is left of dimension ``k``'s loadings is the part no other dimension shares, so genes
    that load on several dimensions stop ranking high on each of them.

    Parameters
    ----------
    loadings
        Genes x dimensions.

    Returns
    -------
    Residualised loadings, same shape.
    """
    result = np.empty_like(loadings, dtype=np.float64)
    for k in range(loadings.shape[1]):
        others = np.delete(loadings, k, axis=1)
        if others.shape[1] == 0:
            result[:, k] = loadings[:, k]
            continue
        coefficients, *_ = np.linalg.lstsq(others, loadings[:, k], rcond=None)
        result[:, k] = loadings[:, k] - others @ coefficients
    return result


def specificity(loadings: np.ndarray, mode: Literal["ratio", "margin"] = "ratio") -> np.ndarray:
    """How much more a gene loads on each dimension than on its strongest other dimension.

    Parameters
    ----------
    loadings
        Genes x dimensions.
    mode
        ``"ratio"``: ``|L[g, k]| / max_{l != k} |L[g, l]|`` (``inf`` when the others are 0);
        ``"margin"``: ``|L[g, k]| - max_{l != k} |L[g, l]|`` (in loading units).

    Returns
    -------
    Genes x dimensions specificities (``inf`` for ratio/margin with a single dimension).
    """
    magnitude = np.abs(np.asarray(loadings, dtype=np.float64))
    n_dims = magnitude.shape[1]
    if n_dims == 1:
        return np.full_like(magnitude, np.inf)
    order = np.sort(magnitude, axis=1)
    largest, second = order[:, -1:], order[:, -2:-1]
    strongest_other = np.where(magnitude == largest, second, largest)
    if mode == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = magnitude / strongest_other
        return np.where(strongest_other > 0, ratio, np.where(magnitude > 0, np.inf, 0.0))
    if mode == "margin":
        return magnitude - strongest_other
    raise ValueError(f"specificity_mode must be 'ratio' or 'margin', got {mode!r}.")


def r2_per_gene(expression, prediction: np.ndarray, chunk_size: int = 4096) -> np.ndarray:
    """Coefficient of determination of a prediction, per gene.

    ``R^2_g = 1 - sum_i (y_ig - p_ig)^2 / sum_i (y_ig - mean_g)^2``; 0 for genes without
    variance. Negative when the prediction is worse than the gene's mean.

    Parameters
    ----------
    expression
        Cells x genes observations, dense or sparse (read in row chunks).
    prediction
        Cells x genes predictions.
    chunk_size
        Cells per chunk.

    Returns
    -------
    One ``R^2`` per gene.
    """
    n_cells, n_genes = expression.shape
    if prediction.shape != (n_cells, n_genes):
        raise ValueError(f"prediction has shape {prediction.shape}, expected {(n_cells, n_genes)}.")
    mean = np.asarray(expression.mean(axis=0), dtype=np.float64).ravel()
    residual = np.zeros(n_genes)
    total = np.zeros(n_genes)
    squares = np.zeros(n_genes)
    for start in range(0, n_cells, chunk_size):
        block = expression[start : start + chunk_size]
        block = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float64)
        residual += np.sum((block - prediction[start : start + chunk_size]) ** 2, axis=0)
        total += np.sum((block - mean) ** 2, axis=0)
        squares += np.sum(block**2, axis=0)
    varies = total > 1e-12 * squares  # rounding leaves ~1e-16 * squares in constant genes
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - residual / total
    return np.where(varies, r2, 0.0)
