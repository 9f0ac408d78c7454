"""Fitted cluster parameters of :class:`lucidvi.model.MixtureVI`: centroids, markers, plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from lucidvi.pl import cluster_expression

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class ClusterParametersMixin:
    """The fitted mixture of a :class:`~lucidvi.model.MixtureVI`: parameters, markers, plots."""

    def get_cluster_parameters(
        self, level: Literal["cluster", "component"] = "cluster"
    ) -> dict[str, pd.DataFrame | pd.Series]:
        """Fitted mixture: centroids, dispersions and weights.

        A cluster made of several components has the expression rate distribution
        ``sum_c w_c Gamma_c / sum_c w_c`` over its components ``c``; its ``mean`` is that
        mixture's mean and its ``dispersion`` the moment-matched ``Var(lambda) / mean^2``. For
        a cluster of one component both are the component's own.

        Parameters
        ----------
        level
            ``"cluster"`` or ``"component"`` (the mixture components, with the cluster of
            each under ``"cluster"``).

        Returns
        -------
        ``{"mean": clusters x genes (mu, expected count per unit size factor), "dispersion":
        clusters x genes (phi = 1 / theta; a gene's Gamma has shape 1/phi and mean mu),
        "weight": pi per cluster}``, and with ``level="component"`` also ``"cluster"``: the
        cluster of each component. Batch effects are not included (they are relative to the
        first batch). Genes outside :attr:`informative_genes_` carry the background's shared
        mean and dispersion in every component and cluster.
        """
        if level not in ("cluster", "component"):
            raise ValueError(f"level must be 'cluster' or 'component', got {level!r}.")
        self._check_if_trained(warn=False)
        genes = self.adata.var_names
        mean, dispersion = self._component_means_and_dispersions()
        weight = torch.exp(self.module.log_weights()).detach().double().cpu().numpy()
        if level == "component":
            components = pd.RangeIndex(self.n_components, name="component")
            return {
                "mean": pd.DataFrame(mean, index=components, columns=genes),
                "dispersion": pd.DataFrame(dispersion, index=components, columns=genes),
                "weight": pd.Series(weight, index=components, name="weight"),
                "cluster": pd.Series(self.cluster_of_component_, index=components, name="cluster"),
            }
        shares = self._component_shares()
        cluster_weight = weight @ shares
        within = weight[:, None] * shares / cluster_weight[None, :]  # components x clusters
        cluster_mean = within.T @ mean
        second_moment = within.T @ (mean**2 * (1.0 + dispersion))
        cluster_dispersion = second_moment / cluster_mean**2 - 1.0
        clusters = pd.RangeIndex(self.n_clusters, name="cluster")
        return {
            "mean": pd.DataFrame(cluster_mean, index=clusters, columns=genes),
            "dispersion": pd.DataFrame(cluster_dispersion, index=clusters, columns=genes),
            "weight": pd.Series(cluster_weight, index=clusters, name="weight"),
        }

    def _component_means_and_dispersions(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and dispersion of every component and registered gene, ``(C, n_genes)`` each."""
        module = self.module
        mean = torch.exp(module.log_mu).detach().double().cpu().numpy()
        dispersion = np.broadcast_to(
            torch.exp(-module.log_theta).detach().double().cpu().numpy(), mean.shape
        )
        columns = self._modelled_columns()
        if columns is None:
            return mean, dispersion
        shape = (self.n_components, self.adata.n_vars)
        full_mean, full_dispersion = np.empty(shape), np.empty(shape)
        background = self._background_columns()
        full_mean[:, columns], full_dispersion[:, columns] = mean, dispersion
        full_mean[:, background] = self.background_["mean"].to_numpy()[None, :]
        full_dispersion[:, background] = self.background_["dispersion"].to_numpy()[None, :]
        return full_mean, full_dispersion

    def get_marker_genes(self, n_top: int = 10, min_expression: float = 1.0) -> pd.DataFrame:
        """Marker genes of each cluster, from the fitted centroids.

        A gene marks cluster ``k`` by its log2 fold change between ``k``'s centroid and the
        highest centroid among the other clusters (so a marker is above every other cluster),
        with centroids scaled to 10,000 counts per cell.

        Parameters
        ----------
        n_top
            Number of markers per cluster.
        min_expression
            Minimum centroid expression in cluster ``k`` (counts per 10,000).

        Returns
        -------
        Long table: ``cluster``, ``rank`` (1 = best), ``gene``, ``expression`` (per 10,000),
        ``next_expression`` (highest other cluster) and ``log2_fold_change``.
        """
        mean = self.get_cluster_parameters()["mean"].to_numpy()
        per_10k = mean / mean.sum(1, keepdims=True) * 1e4
        rows = []
        for k in range(self.n_clusters):
            others = np.delete(per_10k, k, axis=0).max(0)
            lfc = np.log2(per_10k[k] + 1e-3) - np.log2(others + 1e-3)
            eligible = np.flatnonzero(per_10k[k] >= min_expression)
            order = eligible[np.argsort(-lfc[eligible], kind="stable")][:n_top]
            genes = self.adata.var_names
            for rank, g in enumerate(order, start=1):
                rows.append((k, rank, genes[g], per_10k[k, g], others[g], lfc[g]))
        columns = ["cluster", "rank", "gene", "expression", "next_expression", "log2_fold_change"]
        return pd.DataFrame(rows, columns=columns)

    def plot_cluster_expression(self, gene: str, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Draw each cluster's fitted Gamma expression model of a gene over the cells.

        Collects the cells' counts of ``gene`` per unit size factor, their most probable
        clusters and the components' fitted parameters for the gene, and draws them with
        :func:`lucidvi.pl.cluster_expression`.

        Parameters
        ----------
        gene
            Gene name (one of ``adata.var_names``).
        ax
            Axes to draw into (a new figure when ``None``).
        **kwargs
            Other arguments of :func:`lucidvi.pl.cluster_expression` (``clusters``, ``scale``).

        Returns
        -------
        The Axes.
        """
        genes = self.adata.var_names
        if gene not in genes:
            raise ValueError(f"gene={gene!r} is not one of the model's genes.")
        column = genes.get_loc(gene)
        chunks = self._chunks()
        counts = chunks.counts[:, column]
        counts = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts).ravel()
        expression = pd.Series(
            counts / np.exp(chunks.log_size), index=self.adata.obs_names, name=gene
        )
        parameters = self.get_cluster_parameters(level="component")
        components = pd.DataFrame(
            {
                "mean": parameters["mean"][gene],
                "dispersion": parameters["dispersion"][gene],
                "weight": parameters["weight"],
                "cluster": parameters["cluster"],
            }
        )
        assignments = self.get_cluster_assignments()
        return cluster_expression(expression, assignments, components, ax=ax, **kwargs)
