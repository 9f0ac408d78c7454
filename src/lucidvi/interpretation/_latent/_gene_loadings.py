"""Standardised gene loadings: how many gene SDs a gene moves per SD of a latent dimension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._docstrings import lucidvi_dsp
from lucidvi.metrics import TARGET_SUM, log_normalize_counts

from .._core import regression_effects, standardize_effects
from .._inputs import column_moments, embedding_frame, expression_matrix
from .._result import TableResult

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

    from lucidvi.model import LinearVI


@torch.inference_mode()
def decoder_effects(
    model: LinearVI, adata: AnnData, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    r"""Average effect of each latent factor on each gene's log-normalised expression.

    With the decoder's normalised expression ``\rho_i = softmax(W z_i + o_i)`` of cell ``i``,
    the model's log-normalised expression is ``y_{ig} = \log(1 + T \rho_{ig})`` with
    ``T = 10^4``, and

    .. math::

        \partial y_{ig} / \partial z_{ik} = a_{ig} (W_{gk} - \textstyle\sum_h \rho_{ih} W_{hk}),
        \quad a_{ig} = T\rho_{ig} / (1 + T\rho_{ig}),

    averaged over cells. This puts the decoder's loadings on the scale a regression of
    ``log1p(normalize_total)`` expression on the latent measures.

    Parameters
    ----------
    model
        A trained :class:`~lucidvi.model.LinearVI`.
    adata
        Cells to average over, registered with the model.
    batch_size
        Cells per minibatch.

    Returns
    -------
    ``(effects, latent)``: genes x factors effects and the cells x factors latent means.
    """
    module = model.module
    module.eval()
    weights = module.decoder.affine()[0]
    weights_cpu = weights.double().cpu()
    loader = model._make_data_loader(adata=adata, batch_size=batch_size)
    scaled_sum = torch.zeros(weights.shape[0], dtype=torch.float64)
    centering_sum = torch.zeros(weights.shape, dtype=torch.float64)
    latents = []
    for tensors in loader:
        inference = module.inference(**module._get_inference_input(tensors))
        z = inference["qz"].loc
        if module.latent_distribution == "ln":
            z = torch.softmax(z, dim=-1)
        generative_input = module._get_generative_input(tensors, {**inference, "z": z})
        log_rho = module.generative(**generative_input)["log_mu"] - generative_input["library"]
        rho = log_rho.exp().double().cpu()
        scaled = TARGET_SUM * rho / (1.0 + TARGET_SUM * rho)
        centering = rho @ weights_cpu
        scaled_sum += scaled.sum(0)
        centering_sum += scaled.T @ centering
        latents.append(z.cpu().numpy())
    n_cells = adata.n_obs
    effects = (scaled_sum[:, None] * weights_cpu - centering_sum) / n_cells
    return effects.numpy(), np.concatenate(latents).astype(np.float64)


@dataclass(frozen=True, eq=False)
class GeneLoadings(TableResult):
    """Standardised loadings of genes on the dimensions of an embedding.

    ``loadings[g, k]`` is the change of gene ``g``, in units of its standard deviation across
    cells, per one-SD increase of dimension ``k`` with the other dimensions held fixed;
    expression is log-normalised (``log1p`` of counts scaled to 10,000 per cell). Loadings of
    different genes and dimensions are therefore comparable, which raw decoder weights are not.

    Attributes
    ----------
    loadings
        Genes x dimensions standardised loadings.
    effects
        Genes x dimensions change of log-normalised expression per unit of each dimension.
    gene_sd
        Standard deviation of each gene's log-normalised expression.
    latent_sd
        Standard deviation of each dimension.
    source
        ``"decoder"`` (derived from a linear decoder) or ``"regression"`` (least squares).
    """

    loadings: pd.DataFrame
    effects: pd.DataFrame
    gene_sd: pd.Series
    latent_sd: pd.Series
    source: Literal["decoder", "regression"]

    def _validate(self) -> None:
        shape = self.loadings.shape
        if self.effects.shape != shape or len(self.gene_sd) != shape[0]:
            raise ValueError("loadings, effects and gene_sd must describe the same genes.")
        if len(self.latent_sd) != shape[1]:
            raise ValueError("latent_sd must have one entry per dimension.")

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: LinearVI | None = None,
        adata: AnnData | None = None,
        z_key: str | None = None,
        layer: str | None = None,
        *,
        log_normalize: bool | None = None,
        varm_key: str | None = None,
        batch_size: int = 1024,
    ) -> GeneLoadings:
        """Compute standardised loadings from a linear decoder or by regression.

        Two paths give the same quantity:

        - **decoder** (``model`` given, ``z_key`` not): the average derivative of the model's
          log-normalised expression with respect to each factor (:func:`decoder_effects`),
          scaled by the latent and gene SDs. For :class:`~lucidvi.model.LinearVI`.
        - **regression** (``z_key`` given): least-squares regression of every gene's
          log-normalised expression on the embedding ``adata.obsm[z_key]`` (all dimensions
          jointly, with intercept), for any embedding.

        Parameters
        ----------
        model
            A trained :class:`~lucidvi.model.LinearVI` for the decoder path.
        adata
            The cells (default: the model's AnnData).
        z_key
            Key of the embedding in ``adata.obsm``; selects the regression path.
        %(expression_layer)s
            Regression path only: the decoder path reads the model's registered counts.
        %(log_normalize)s
        varm_key
            Also store the loadings (genes x dimensions) in ``adata.varm[varm_key]``.
        batch_size
            Cells per minibatch on the decoder path.

        Returns
        -------
        The loadings.

        Notes
        -----
        The decoder path measures the model's noise-free log expression, the regression path
        the observed one; they agree closely for genes detected in many cells (see the
        Interpretation section of the benchmarks in the documentation). For genes detected in
        a handful of cells the decoder can give large standardised loadings that the data do
        not show (the gene's observed SD is tiny): filter them with
        ``GenesPerDim.compute(min_frac=...)`` before reading gene lists.

        Examples
        --------
        >>> res = GeneLoadings.compute(model)  # decoder path
        >>> adata.obsm["X_pca"] = ...
        >>> res = GeneLoadings.compute(adata=adata, z_key="X_pca", layer="counts")
        """
        if z_key is None and model is None:
            raise ValueError("Pass a LinearVI model (decoder path) or z_key= (regression path).")
        if adata is None:
            if model is None:
                raise ValueError("Pass adata= with the embedding in adata.obsm[z_key].")
            adata = model.adata
        if z_key is None:
            if not hasattr(getattr(model.module, "decoder", None), "affine"):
                raise TypeError(
                    f"{type(model).__name__} has no linear decoder; store its embedding in "
                    f"adata.obsm and pass z_key= to use the regression path."
                )
            adata = model._validate_anndata(adata)
            counts = model.get_anndata_manager(adata).get_from_registry(REGISTRY_KEYS.X_KEY)
            expression = log_normalize_counts(counts)
            effects, latent = decoder_effects(model, adata, batch_size)
            columns = [f"Z_{k}" for k in range(latent.shape[1])]
            source = "decoder"
        else:
            frame = embedding_frame(z_key, adata)
            latent, columns = frame.to_numpy(), list(frame.columns)
            expression = expression_matrix(adata, layer, log_normalize)
            effects = regression_effects(expression, latent)
            source = "regression"
        _, gene_sd = column_moments(expression)
        latent_sd = latent.std(axis=0)
        genes = adata.var_names.copy()
        result = cls(
            loadings=pd.DataFrame(
                standardize_effects(effects, latent_sd, gene_sd), index=genes, columns=columns
            ),
            effects=pd.DataFrame(effects, index=genes, columns=columns),
            gene_sd=pd.Series(gene_sd, index=genes, name="gene_sd"),
            latent_sd=pd.Series(latent_sd, index=columns, name="latent_sd"),
            source=source,
        )
        if varm_key is not None:
            adata.varm[varm_key] = result.loadings.to_numpy()
        return result

    def to_dataframe(self) -> pd.DataFrame:
        """Long table: ``gene``, ``dim``, ``loading``, ``effect``, ``gene_sd``, ``latent_sd``."""
        n_genes, n_dims = self.loadings.shape
        return pd.DataFrame(
            {
                "gene": np.repeat(self.loadings.index.to_numpy(), n_dims),
                "dim": np.tile(self.loadings.columns.to_numpy(), n_genes),
                "loading": self.loadings.to_numpy().ravel(),
                "effect": self.effects.to_numpy().ravel(),
                "gene_sd": np.repeat(self.gene_sd.to_numpy(), n_dims),
                "latent_sd": np.tile(self.latent_sd.to_numpy(), n_genes),
            }
        )

    def _parameters(self) -> dict[str, Any]:
        return {"source": self.source}

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> GeneLoadings:
        genes = pd.unique(table["gene"].astype(str))
        dims = pd.unique(table["dim"].astype(str))
        shape = (len(genes), len(dims))
        return cls(
            loadings=pd.DataFrame(table["loading"].to_numpy().reshape(shape), genes, dims),
            effects=pd.DataFrame(table["effect"].to_numpy().reshape(shape), genes, dims),
            gene_sd=pd.Series(table["gene_sd"].to_numpy()[:: len(dims)], genes, name="gene_sd"),
            latent_sd=pd.Series(table["latent_sd"].to_numpy()[: len(dims)], dims, name="latent_sd"),
            source=parameters["source"],
        )

    @lucidvi_dsp.dedent
    def plot_heatmap(self, *, n_top: int = 3, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Heatmap of the standardised loadings of each dimension's most extreme genes.

        Drawn by :func:`lucidvi.pl.loadings_heatmap`, whose parameters it takes, from
        :attr:`loadings`, with a title that names them standardised.

        Parameters
        ----------
        n_top
            Genes per dimension and direction.
        %(ax)s
        %(plot_kwargs)s

        Returns
        -------
        The Axes.
        """
        from lucidvi.pl import loadings_heatmap

        ax = loadings_heatmap(self.loadings, n_top=n_top, ax=ax, **kwargs)
        ax.set_title(f"Standardised loadings: top {n_top} +/- genes per dimension")
        return ax

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "heatmap", self.plot_heatmap()
