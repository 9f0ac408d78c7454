"""A report on an embedding's dimensions: size, rank, independence and correlations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core import numerical_rank
from .._inputs import embedding_frame
from .._result import TableResult, plot_method

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes


@dataclass(frozen=True, eq=False)
class LatentReport(TableResult):
    """Shape, numerical rank and correlation structure of an embedding.

    Per-dimension interpretations (loadings, importance) assume the dimensions are linearly
    independent; this report says whether they are and which ones move together.

    Attributes
    ----------
    n_obs
        Number of cells.
    n_dims
        Number of dimensions.
    rank
        Numerical rank of the centred embedding.
    correlation
        Dimensions x dimensions Pearson correlation matrix.
    """

    n_obs: int
    n_dims: int
    rank: int
    correlation: pd.DataFrame

    def _validate(self) -> None:
        if self.correlation.shape != (self.n_dims, self.n_dims):
            raise ValueError(f"correlation must be {self.n_dims} x {self.n_dims}.")
        if not 0 <= self.rank <= self.n_dims:
            raise ValueError(f"rank must be between 0 and n_dims={self.n_dims}, got {self.rank}.")

    @property
    def linearly_independent(self) -> bool:
        """Whether the (centred) dimensions are linearly independent (rank == n_dims)."""
        return self.rank == self.n_dims

    @classmethod
    def compute(cls, adata: AnnData, z_key: str) -> LatentReport:
        """Describe the embedding ``adata.obsm[z_key]``.

        Parameters
        ----------
        adata
            Cells with the embedding.
        z_key
            Key in ``adata.obsm``.

        Returns
        -------
        The report.
        """
        frame = embedding_frame(z_key, adata)
        values = frame.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            correlation = np.corrcoef(values, rowvar=False).reshape(values.shape[1], -1)
        correlation = np.nan_to_num(correlation, nan=0.0)  # constant dimensions correlate with 0
        return cls(
            n_obs=values.shape[0],
            n_dims=values.shape[1],
            rank=numerical_rank(values),
            correlation=pd.DataFrame(correlation, index=frame.columns, columns=frame.columns),
        )

    def max_abs_correlation(self) -> float:
        """Largest absolute correlation between two different dimensions (0 with one dimension)."""
        values = np.abs(self.correlation.to_numpy())
        off_diagonal = values[~np.eye(self.n_dims, dtype=bool)]
        return float(off_diagonal.max()) if off_diagonal.size else 0.0

    def to_dataframe(self) -> pd.DataFrame:
        """Long table of correlations: ``dim_a``, ``dim_b``, ``correlation``."""
        dims = self.correlation.columns.to_numpy()
        return pd.DataFrame(
            {
                "dim_a": np.repeat(dims, self.n_dims),
                "dim_b": np.tile(dims, self.n_dims),
                "correlation": self.correlation.to_numpy().ravel(),
            }
        )

    def _parameters(self) -> dict[str, Any]:
        return {"n_obs": self.n_obs, "n_dims": self.n_dims, "rank": self.rank}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> LatentReport:
        dims = pd.unique(table["dim_a"].astype(str))
        values = table["correlation"].to_numpy().reshape(len(dims), len(dims))
        return cls(correlation=pd.DataFrame(values, dims, dims), **parameters)

    def summary(self) -> str:
        """One line: cells, dimensions, rank and the largest correlation."""
        status = "linearly independent" if self.linearly_independent else "linearly DEPENDENT"
        return (
            f"{self.n_obs} cells x {self.n_dims} dimensions, rank {self.rank} ({status}); "
            f"largest |correlation| between dimensions {self.max_abs_correlation():.2f}"
        )

    plot_correlation = plot_method(
        "latent_correlation",
        "Clustered heatmap of the correlations between dimensions.",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "correlation", self.plot_correlation()
