"""Choosing the number of clusters of :class:`lucidvi.model.MixtureVI`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from scvi import settings
from scvi.utils import track

from lucidvi._docstrings import lucidvi_dsp
from lucidvi.module import NBMixture
from lucidvi.train import fit_em_restarts, posterior_in_chunks

from ._fitting import EM_MAX_ITER
from ._initial_memberships import START_METHODS, InitialMemberships

logger = logging.getLogger(__name__)

# Smallest membership whose logarithm enters the entropy: 1e-300 is near float64's smallest
# normal number, so a membership of 0 contributes 0 (as r log r -> 0), not NaN.
_TINY = 1e-300


def _n_parameters(module: NBMixture) -> int:
    """Free parameters: centroids, dispersions, weights (summing to one) and batch effects."""
    k, g = module.log_mu.shape
    return k * g + module.log_theta.numel() + (k - 1) + module.batch_effect.numel()


def _entropy(responsibilities: np.ndarray) -> float:
    """Entropy of the memberships, summed over cells (nats)."""
    r = np.asarray(responsibilities, dtype=np.float64)
    return float(-(r * np.log(np.clip(r, _TINY, 1.0))).sum())


class ClusterNumberSelectionMixin:
    """Choosing the number of clusters of a :class:`~lucidvi.model.MixtureVI` by refitting."""

    @lucidvi_dsp.dedent
    def select_n_clusters(
        self,
        k_range: Iterable[int],
        criterion: Literal["bic", "icl", "heldout"] = "bic",
        init: Literal["kmeans", "leiden", "random"] = "kmeans",
        n_init: int = 1,
        max_epochs: int = EM_MAX_ITER,
        tol: float = 1e-5,
        heldout_fraction: float = 0.2,
        seed: int | None = None,
        progress_bar: bool = True,
    ) -> pd.DataFrame:
        r"""Fit the mixture by EM for each number of clusters and score each fit.

        The model itself is left unchanged: make a new model with the selected ``n_clusters``.

        Parameters
        ----------
        k_range
            Numbers of clusters to try.
        criterion
            ``"bic"``: Bayesian information criterion ``-2 log L + p log n`` (lower is better);
            ``"icl"``: integrated completed likelihood, BIC plus twice the entropy of the
            memberships, which also penalises overlapping clusters; ``"heldout"``: log-likelihood
            of ``heldout_fraction`` of the cells left out of the fit (higher is better).
        init
            Start of each fit (see :meth:`train`).
        n_init
            Restarts per number of clusters (the best log-likelihood is kept).
        max_epochs
            Maximum EM iterations per fit.
        %(model_em_tol)s
        heldout_fraction
            Fraction of cells held out with ``criterion="heldout"``.
        seed
            Seed of starts and the held-out split (``scvi.settings.seed``, or 0, when ``None``).
        %(model_progress_bar)s

        Returns
        -------
        DataFrame indexed by ``n_clusters`` with ``log_likelihood``, ``n_parameters``, ``bic``,
        ``icl``, ``heldout_log_likelihood`` (``heldout`` only) and ``selected`` (the best by
        ``criterion``).
        """
        if criterion not in ("bic", "icl", "heldout"):
            raise ValueError(f"criterion must be 'bic', 'icl' or 'heldout', got {criterion!r}.")
        if not (isinstance(init, str) and init in START_METHODS):
            raise ValueError("select_n_clusters starts from 'kmeans', 'leiden' or 'random'.")
        k_values = sorted({int(k) for k in k_range})
        if not k_values or k_values[0] < 2 or k_values[-1] > self.adata.n_obs:
            raise ValueError(
                f"k_range must hold numbers from 2 to the number of cells: {k_values}."
            )
        seed = (settings.seed or 0) if seed is None else int(seed)
        n_cells = self.adata.n_obs
        fit_cells, test_cells = np.arange(n_cells), None
        if criterion == "heldout":
            if not 0 < heldout_fraction < 1:
                raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}.")
            order = np.random.default_rng(seed).permutation(n_cells)
            n_test = max(1, int(round(heldout_fraction * n_cells)))
            fit_cells, test_cells = np.sort(order[n_test:]), np.sort(order[:n_test])
        chunks = self._chunks(indices=fit_cells)
        starts = InitialMemberships(init, self.adata[fit_cells], chunks.counts, seed=seed)
        rows = []
        for k in track(k_values, description="Numbers of clusters", disable=not progress_bar):
            module = NBMixture(
                n_input=self.module.n_input,
                n_clusters=k,
                n_batch=self.module.n_batch,
                dispersion=self.module.dispersion,
            ).to(self.device)
            best_ll = fit_em_restarts(
                module,
                chunks,
                partial(starts, k),
                n_init=n_init,
                seed=seed,
                max_iter=max_epochs,
                tol=tol,
                progress_bar=False,
            ).log_likelihood
            responsibilities, _ = posterior_in_chunks(module, chunks)
            n_params = _n_parameters(module)
            bic = -2.0 * best_ll + n_params * np.log(len(fit_cells))
            row = {
                "n_clusters": k,
                "log_likelihood": best_ll,
                "n_parameters": n_params,
                "bic": bic,
                "icl": bic + 2.0 * _entropy(responsibilities),
            }
            if test_cells is not None:
                _, heldout = posterior_in_chunks(module, self._chunks(indices=test_cells))
                row["heldout_log_likelihood"] = float(heldout.sum())
            rows.append(row)
            logger.info("n_clusters=%d: %s", k, row)
        table = pd.DataFrame(rows).set_index("n_clusters")
        column = "heldout_log_likelihood" if criterion == "heldout" else criterion
        best = table[column].idxmax() if criterion == "heldout" else table[column].idxmin()
        table["selected"] = table.index == best
        return table
