"""Choose a gene panel: greedy information maximisation, or the usual rankings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from anndata import AnnData

from lucidvi._layers import read_layer
from lucidvi.metrics import log_normalize_counts

if TYPE_CHECKING:
    from lucidvi.model import LinearVI

logger = logging.getLogger(__name__)

Strategy = Literal["greedy_information", "mean_expression", "hvg"]
PANEL_STRATEGIES: tuple[Strategy, ...] = ("greedy_information", "mean_expression", "hvg")
"""The strategies of :func:`select_panel`."""
# The greedy search holds a dense genes x genes float64 covariance: 0.8 GB at 10,000 genes.
_MAX_GENES_FOR_COVARIANCE = 10_000


def select_panel(
    adata: AnnData,
    n_genes: int,
    model: LinearVI | None = None,
    strategy: Strategy = "greedy_information",
    *,
    layer: str | None = None,
    must_include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    n_components: int = 10,
) -> list[str]:
    r"""Choose ``n_genes`` genes that carry the most information about the transcriptome.

    Parameters
    ----------
    adata
        Counts (cells x genes) of the full transcriptome.
    n_genes
        Panel size, including ``must_include``.
    model
        A trained :class:`~lucidvi.model.LinearVI` on ``adata``'s genes. With
        ``"greedy_information"``, the panel maximises the information about its latent
        factors; without a model, about the top ``n_components`` principal components.
    strategy
        ``"greedy_information"`` (see Notes), ``"mean_expression"`` (the most expressed genes)
        or ``"hvg"`` (scanpy's ``seurat_v3`` highly variable genes, from the counts).
    layer
        Layer of ``adata`` with the counts; ``adata.X`` when ``None``.
    must_include
        Genes the panel must contain (e.g. markers already on an assay); they come first.
    exclude
        Genes the panel must not contain.
    n_components
        Without a model: number of principal components of the log-normalised expression
        that stand for the transcriptome.

    Returns
    -------
    The panel: gene names in the order chosen (greedy order, or the ranking), so the first
    ``m`` genes of a longer panel are the panel of size ``m``.

    Notes
    -----
    ``"greedy_information"`` treats the genes' ``log1p`` counts :math:`x` (what a panel
    measures, and what LinearVI's encoder reads) and the target embedding :math:`z` (the
    model's latent posterior means, or the principal components of the log-normalised
    expression) as jointly Gaussian, with the Ledoit-Wolf shrunk correlation matrix (so genes
    do not look informative by chance when cells are few). A panel :math:`S` then carries

    .. math:: I(x_S; z) = \tfrac12 \log\det\Sigma_{zz} - \tfrac12 \log\det\Sigma_{zz \mid S},

    and each step adds the gene with the largest gain, which has the closed form
    :math:`-\tfrac12 \log(1 - c_{gz}^\top \Sigma_{zz\mid S}^{-1} c_{gz} / c_{gg})` in the
    covariances conditional on the genes already chosen; a rank-one update conditions all of
    them on the new gene. The search therefore prefers genes that explain the embedding and
    skips genes redundant with the panel. The cost is ``O(n_genes * (p + d)^2)`` for ``p``
    genes, with a ``(p + d)``-square matrix in memory, so at most 10,000 candidate genes
    (drop the rest with ``exclude`` or subset ``adata``).
    """
    if strategy not in PANEL_STRATEGIES:
        raise ValueError(f"strategy must be one of {PANEL_STRATEGIES}, got {strategy!r}.")
    counts, where = read_layer(adata, layer)
    must_include = _gene_list(must_include, adata, "must_include")
    exclude = _gene_list(exclude, adata, "exclude")
    both = sorted(set(must_include) & set(exclude))
    if both:
        raise ValueError(f"Genes both in must_include and exclude: {both[:5]}.")
    n_available = adata.n_vars - len(exclude)
    if not len(must_include) <= n_genes <= n_available:
        raise ValueError(
            f"n_genes must be between len(must_include) = {len(must_include)} and the "
            f"{n_available} genes not excluded, got {n_genes}."
        )
    candidates = ~np.isin(adata.var_names, exclude)
    if strategy == "greedy_information":
        order = _greedy_information(
            adata, counts, n_genes, model, candidates, must_include, n_components
        )
    else:
        scores = _ranking_scores(adata, counts, strategy, layer)
        ranked = adata.var_names[np.argsort(-scores, kind="stable")]
        keep = set(np.asarray(adata.var_names)[candidates]) - set(must_include)
        order = must_include + [g for g in ranked if g in keep]
    logger.info("Selected %d genes from %s by %s.", n_genes, where, strategy)
    return list(order[:n_genes])


def _gene_list(genes: Sequence[str] | None, adata: AnnData, name: str) -> list[str]:
    if genes is None:
        return []
    genes = [genes] if isinstance(genes, str) else list(dict.fromkeys(genes))
    unknown = [g for g in genes if g not in adata.var_names]
    if unknown:
        raise ValueError(f"{name} has {len(unknown)} genes not in adata.var_names: {unknown[:5]}.")
    return genes


def _ranking_scores(adata: AnnData, counts, strategy: str, layer: str | None) -> np.ndarray:
    if strategy == "mean_expression":
        return np.asarray(counts.mean(axis=0), dtype=np.float64).ravel()
    import scanpy as sc

    view = AnnData(X=counts, obs=adata.obs[[]], var=adata.var[[]])
    table = sc.pp.highly_variable_genes(
        view, flavor="seurat_v3", n_top_genes=adata.n_vars, inplace=False
    )
    return -np.asarray(table["highly_variable_rank"], dtype=np.float64)


def _target_embedding(
    adata: AnnData, counts, model: LinearVI | None, n_components: int
) -> np.ndarray:
    if model is not None:
        if not np.array_equal(np.asarray(model.adata.var_names), np.asarray(adata.var_names)):
            raise ValueError(
                "The model was trained on other genes than adata's (or in another order)."
            )
        return model.get_latent_representation(adata)
    from sklearn.decomposition import PCA

    log_expression = _dense(log_normalize_counts(counts))
    n_components = min(n_components, min(log_expression.shape) - 1)
    return PCA(n_components=n_components, random_state=0).fit_transform(log_expression)


def _greedy_information(
    adata: AnnData,
    counts,
    n_genes: int,
    model: LinearVI | None,
    candidates: np.ndarray,
    must_include: list[str],
    n_components: int,
) -> list[str]:
    if int(candidates.sum()) > _MAX_GENES_FOR_COVARIANCE:
        raise ValueError(
            f"{int(candidates.sum())} candidate genes is more than the greedy search handles "
            f"({_MAX_GENES_FOR_COVARIANCE}); pre-filter (e.g. highly variable genes) or pass "
            f"exclude=."
        )
    log_counts = np.log1p(_dense(counts).astype(np.float64))
    target = _target_embedding(adata, counts, model, n_components)
    covariance = _shrunk_correlation(np.hstack([log_counts, target]))
    n_vars = adata.n_vars
    chosen = [int(adata.var_names.get_loc(g)) for g in must_include]
    for gene in chosen:
        _condition_on(covariance, gene)
    available = candidates.copy()
    available[chosen] = False
    while len(chosen) < n_genes:
        gene = _best_gene(covariance, n_vars, available)
        chosen.append(gene)
        available[gene] = False
        _condition_on(covariance, gene)
    return list(adata.var_names[chosen])


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix)


def _shrunk_correlation(values: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk correlation matrix of the columns (constant columns: variance 1)."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    centred = values - values.mean(axis=0)
    scale = centred.std(axis=0)
    standardised = centred / np.where(scale > 0, scale, 1.0)
    shrinkage = ledoit_wolf_shrinkage(standardised, assume_centered=True)
    correlation = standardised.T @ standardised / values.shape[0]
    correlation *= 1.0 - shrinkage
    correlation[np.diag_indices_from(correlation)] += shrinkage
    return correlation


def _best_gene(covariance: np.ndarray, n_vars: int, available: np.ndarray) -> int:
    """Gene with the largest information gain about the target, given the panel so far."""
    target_cov = covariance[n_vars:, n_vars:]
    cross = covariance[:n_vars, n_vars:]
    explained = np.einsum("gi,gi->g", cross @ np.linalg.pinv(target_cov), cross)
    fraction = explained / np.maximum(np.diag(covariance)[:n_vars], np.finfo(float).tiny)
    gain = -0.5 * np.log1p(-np.clip(fraction, 0.0, 1.0 - 1e-12))
    gain[~available] = -np.inf
    return int(np.argmax(gain))


def _condition_on(covariance: np.ndarray, index: int) -> None:
    """Replace ``covariance`` in place by the covariance conditional on variable ``index``."""
    column = covariance[:, index].copy()
    covariance -= np.outer(column, column) / column[index]
