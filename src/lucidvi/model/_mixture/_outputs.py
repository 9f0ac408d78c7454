"""MixtureVI's outputs per cell: cluster probabilities, assignments and log-likelihoods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from lucidvi._docstrings import lucidvi_dsp
from lucidvi.train import posterior_in_chunks


class ClusterOutputsMixin:
    """What a trained :class:`~lucidvi.model.MixtureVI` says about each cell."""

    @lucidvi_dsp.dedent
    def get_cluster_probabilities(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        source: Literal["posterior", "encoder"] = "posterior",
        level: Literal["cluster", "component"] = "cluster",
    ) -> pd.DataFrame:
        """Cluster membership probabilities of every cell.

        Parameters
        ----------
        %(model_new_adata)s
        %(model_indices)s
        source
            ``"posterior"``: the exact posterior ``p(k | x) ∝ pi_k NB(x | mu_k, phi_k)`` at the
            fitted parameters; ``"encoder"``: the amortized ``q(k | x)`` of an
            ``"amortized"`` fit (the gap between the two shows the amortization error).
        level
            ``"cluster"``: a cluster's probability is the sum of its components';
            ``"component"``: one column per mixture component (as ``"cluster"`` when
            ``n_components == n_clusters``).

        Returns
        -------
        DataFrame cells x clusters (columns ``0 .. K-1``) or components, rows summing to one.
        """
        self._check_if_trained(warn=False)
        if level not in ("cluster", "component"):
            raise ValueError(f"level must be 'cluster' or 'component', got {level!r}.")
        if source == "posterior":
            probabilities, _ = posterior_in_chunks(self.module, self._chunks(adata, indices))
        elif source == "encoder":
            probabilities = self._encoder_probabilities(adata, indices)
        else:
            raise ValueError(f"source must be 'posterior' or 'encoder', got {source!r}.")
        if level == "cluster":
            probabilities = probabilities @ self._component_shares().astype(probabilities.dtype)
        return pd.DataFrame(
            probabilities,
            index=self._obs_names(adata, indices),
            columns=range(probabilities.shape[1]),
        )

    @torch.inference_mode()
    def _encoder_probabilities(
        self, adata: AnnData | None, indices: Sequence[int] | None
    ) -> np.ndarray:
        """Return the amortized ``q(component | x)`` of every cell."""
        if getattr(self, "train_method_", None) != "amortized":
            raise ValueError("The encoder is trained only by train(method='amortized').")
        self.module.eval()
        parts = []
        for _, x, log_size, batch in self._chunks(adata, indices):
            logits = self.module.inference(x, batch, torch.exp(log_size))["logits"]
            parts.append(torch.softmax(logits, -1).cpu().numpy())
        return np.concatenate(parts)

    @lucidvi_dsp.dedent
    def get_cluster_assignments(
        self, adata: AnnData | None = None, indices: Sequence[int] | None = None
    ) -> pd.Series:
        """Most probable cluster of every cell (posterior argmax).

        Parameters
        ----------
        %(model_new_adata)s
        %(model_indices)s

        Returns
        -------
        Integer Series named ``"cluster"``, indexed by cell.
        """
        probabilities = self.get_cluster_probabilities(adata, indices)
        best = probabilities.to_numpy().argmax(1)
        return pd.Series(best, index=probabilities.index, name="cluster")

    @lucidvi_dsp.dedent
    def get_log_likelihood(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        per_cell: bool = False,
    ) -> float | pd.Series:
        """Marginal log-likelihood ``sum_i log sum_k pi_k NB(x_i | s_i mu_k, phi_k)`` (nats).

        Parameters
        ----------
        %(model_new_adata)s
        %(model_indices)s
        per_cell
            Return each cell's log-likelihood instead of the total.

        Returns
        -------
        The total, or a Series per cell.
        """
        self._check_if_trained(warn=False)
        _, log_likelihood = posterior_in_chunks(self.module, self._chunks(adata, indices))
        if per_cell:
            return pd.Series(
                log_likelihood, index=self._obs_names(adata, indices), name="log_likelihood"
            )
        return float(log_likelihood.sum())
