"""The genes that load most on each factor, as a tidy table."""

from __future__ import annotations

import pandas as pd


def top_loading_genes(loadings: pd.DataFrame, n_top: int = 10) -> pd.DataFrame:
    """List the genes with the largest positive and negative loading on each factor.

    Parameters
    ----------
    loadings
        Genes x factors, e.g. :meth:`lucidvi.model.LinearVI.get_loadings` or
        :attr:`lucidvi.interpretation.GeneLoadings.loadings`.
    n_top
        Genes per factor and direction.

    Returns
    -------
    Tidy DataFrame with columns ``factor``, ``direction`` (``"+"``/``"-"``), ``rank``
    (1 = most extreme), ``gene`` and ``loading``.

    Examples
    --------
    >>> top = lucidvi.tl.top_loading_genes(model.get_loadings(), n_top=5)
    >>> top[top["factor"] == "Z_0"]
    """
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, got {n_top}.")
    rows = []
    for factor in loadings.columns:
        column = loadings[factor].sort_values()
        for direction, genes in (("+", column[::-1][:n_top]), ("-", column[:n_top])):
            for rank, (gene, value) in enumerate(genes.items(), start=1):
                rows.append((factor, direction, rank, gene, float(value)))
    return pd.DataFrame(rows, columns=["factor", "direction", "rank", "gene", "loading"])
