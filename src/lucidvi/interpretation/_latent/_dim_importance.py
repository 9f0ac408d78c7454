"""Importance of each embedding dimension: the expression variance it accounts for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._core import dimension_importance, n_dims_to_cutoff
from .._inputs import embedding_frame
from .._result import TableResult, plot_method
from ._gene_loadings import GeneLoadings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes


@dataclass(frozen=True, eq=False)
class DimImportance(TableResult):
    """Importance of each dimension of an embedding, its order and the elbow.

    Attributes
    ----------
    importance
        Importance per dimension: the share of the total (``use_ratio=True``) or the
        variance itself.
    ratio
        Share of the total per dimension (sums to one).
    order
        Dimensions from the most to the least important.
    n_dims_at_cutoff
        How many dimensions, in that order, reach ``cumulative_cutoff`` of the total.
    cumulative_cutoff
        The cumulative share used for ``n_dims_at_cutoff``.
    mode
        ``"full"`` or ``"diag"`` (see :func:`compute`).
    use_ratio
        Whether ``importance`` holds shares.
    """

    importance: pd.Series
    ratio: pd.Series
    order: tuple[str, ...]
    n_dims_at_cutoff: int
    cumulative_cutoff: float
    mode: Literal["full", "diag"]
    use_ratio: bool

    def _validate(self) -> None:
        if not 0 < self.cumulative_cutoff <= 1:
            raise ValueError(f"cumulative_cutoff must be in (0, 1], got {self.cumulative_cutoff}.")
        if sorted(self.order) != sorted(self.importance.index):
            raise ValueError("order must list every dimension once.")

    @classmethod
    def compute(
        cls,
        loadings: GeneLoadings | pd.DataFrame | np.ndarray,
        embedding: np.ndarray | pd.DataFrame,
        mode: Literal["full", "diag"] = "full",
        use_ratio: bool = True,
        cumulative_cutoff: float = 0.6,
    ) -> DimImportance:
        r"""Rank an embedding's dimensions by the expression variance each accounts for.

        With per-unit effects ``W`` (genes x dimensions) and the embedding's covariance
        ``\Sigma``, the linear reconstruction ``W z`` has total variance ``tr(W\Sigma W')``,
        which splits over dimensions (:func:`~lucidvi.interpretation._core.dimension_importance`):

        - ``"full"``: ``(W'W\Sigma)_{kk}``, an exact additive split (cross terms shared).
        - ``"diag"``: ``(W'W)_{kk}\Sigma_{kk}``, each dimension alone.

        From :class:`GeneLoadings`, ``W`` is in gene-SD units, so every gene counts equally and
        the importance is a sum over genes of the share of each gene's variance the dimension
        explains. Factor models such as LinearVI have unordered factors; this gives them an
        order and an elbow.

        Parameters
        ----------
        loadings
            :class:`GeneLoadings`, or genes x dimensions effects per unit of each dimension.
        embedding
            Cells x dimensions embedding the loadings belong to.
        mode
            ``"full"`` or ``"diag"``.
        use_ratio
            Report importance as shares of the total (else in variance units).
        cumulative_cutoff
            Cumulative share that ``n_dims_at_cutoff`` must reach.

        Returns
        -------
        The importances.
        """
        frame = embedding_frame(embedding)
        if isinstance(loadings, GeneLoadings):
            safe_sd = np.where(loadings.latent_sd > 0, loadings.latent_sd, 1.0)
            effects = loadings.loadings.to_numpy() / safe_sd[None, :]
            dims = list(loadings.loadings.columns)
        else:
            effects = np.asarray(loadings, dtype=np.float64)
            if effects.ndim != 2:
                raise ValueError(f"loadings must be genes x dimensions, got shape {effects.shape}.")
            dims = list(loadings.columns) if isinstance(loadings, pd.DataFrame) else None
        if effects.shape[1] != frame.shape[1]:
            raise ValueError(
                f"loadings have {effects.shape[1]} dimensions but the embedding has "
                f"{frame.shape[1]}."
            )
        if not np.all(np.isfinite(effects)):
            raise ValueError("loadings contain NaN or infinite values.")
        dims = [str(d) for d in (dims or frame.columns)]
        covariance = np.atleast_2d(np.cov(frame.to_numpy(), rowvar=False))
        raw = dimension_importance(effects, covariance, mode)
        total = raw.sum()
        if total <= 0:
            raise ValueError("The embedding accounts for no expression variance (total <= 0).")
        ratio = pd.Series(raw / total, index=dims, name="ratio")
        order = tuple(ratio.sort_values(ascending=False, kind="stable").index)
        return cls(
            importance=ratio.rename("importance") if use_ratio else pd.Series(raw, dims),
            ratio=ratio,
            order=order,
            n_dims_at_cutoff=n_dims_to_cutoff(ratio[list(order)].to_numpy(), cumulative_cutoff),
            cumulative_cutoff=float(cumulative_cutoff),
            mode=mode,
            use_ratio=bool(use_ratio),
        )

    @property
    def selected(self) -> tuple[str, ...]:
        """The ``n_dims_at_cutoff`` most important dimensions."""
        return self.order[: self.n_dims_at_cutoff]

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table in order of importance.

        Returns
        -------
        Columns ``rank``, ``dim``, ``importance``, ``ratio``, ``cumulative_ratio``, ``selected``.
        """
        order = list(self.order)
        ratio = self.ratio[order].to_numpy()
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(order) + 1),
                "dim": order,
                "importance": self.importance[order].to_numpy(),
                "ratio": ratio,
                "cumulative_ratio": np.cumsum(ratio),
                "selected": np.arange(len(order)) < self.n_dims_at_cutoff,
            }
        )

    def _parameters(self) -> dict[str, Any]:
        return {
            "cumulative_cutoff": self.cumulative_cutoff,
            "mode": self.mode,
            "use_ratio": self.use_ratio,
            "dims": [str(d) for d in self.importance.index],
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> DimImportance:
        by_dim = table.assign(dim=table["dim"].astype(str)).set_index("dim")
        dims = parameters.pop("dims")
        return cls(
            importance=by_dim["importance"].reindex(dims),
            ratio=by_dim["ratio"].reindex(dims),
            order=tuple(by_dim.index),
            n_dims_at_cutoff=int(table["selected"].astype(bool).sum()),
            **parameters,
        )

    plot_elbow = plot_method(
        "dim_importance_elbow",
        "Plot the importance in decreasing order with the cumulative share (on a twin y axis) "
        "and the cutoff.",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "elbow", self.plot_elbow()
