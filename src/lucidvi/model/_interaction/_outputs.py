"""InteractionVI's outputs: predictions, attention, niche embeddings and log-likelihoods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from lucidvi._constants import RECEIVER_INDEX_KEY
from lucidvi._docstrings import lucidvi_dsp
from lucidvi.train import neighborhood_loader

from ._ablation import ablation_options
from ._attention_table import attention_table

Component = Literal["total", "intrinsic", "niche"]


class InteractionOutputsMixin:
    """What a trained :class:`~lucidvi.model.InteractionVI` returns, per cell and minibatch."""

    def _outputs(self, adata: AnnData | None, indices, batch_size: int, **ablation):
        """Yield ``(tensors, inference outputs, generative outputs)`` per minibatch."""
        self._check_if_trained(warn=False)
        adata = self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        cells = np.arange(adata.n_obs) if indices is None else np.asarray(indices)
        options = ablation_options(self.module.n_heads, self.labels, self.device, **ablation)
        self.module.eval()
        for tensors in neighborhood_loader(manager, cells, batch_size):
            inference, generative = self.module(
                tensors, inference_kwargs=options, compute_loss=False
            )
            yield tensors, inference, generative

    @torch.inference_mode()
    @lucidvi_dsp.dedent
    def get_predictions(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        component: Component = "total",
        heads: Sequence[int] | None = None,
        mask_sender_types: Sequence[str] | None = None,
        mask_senders: Sequence[int] | None = None,
        batch_size: int = 256,
    ) -> pd.DataFrame:
        """Predicted expression of each cell, whole or split into intrinsic and niche parts.

        Parameters
        ----------
        %(model_adata)s
        %(model_receivers)s
        component
            ``"total"``, ``"intrinsic"`` (type and batch only) or ``"niche"`` (total minus
            intrinsic, so the two add up to the total).
        heads
            Heads to keep; the others are ablated. All when ``None``.
        mask_sender_types
            Cell types that no receiver may attend to (as if absent from the tissue).
        mask_senders
            Rows of ``adata`` (cells) that no receiver may attend to.
        %(model_batch_size)s

        Returns
        -------
        DataFrame of cells x genes: expected counts (``"nb"``, with the cell's observed
        library size) or means (``"gaussian"``).
        """
        if component not in ("total", "intrinsic", "niche"):
            raise ValueError(f"component must be total, intrinsic or niche, got {component!r}.")
        parts, names = [], []
        ablation = {
            "heads": heads,
            "mask_sender_types": mask_sender_types,
            "mask_senders": mask_senders,
        }
        for tensors, _, generative in self._outputs(adata, indices, batch_size, **ablation):
            intrinsic, niche = generative["intrinsic"], generative["niche"]
            if self.module.likelihood == "nb":
                library = tensors[REGISTRY_KEYS.X_KEY].to(intrinsic.device).sum(-1, keepdim=True)
                base = library * torch.softmax(intrinsic, dim=-1)
                total = library * torch.softmax(intrinsic + niche, dim=-1)
            else:
                base, total = intrinsic, intrinsic + niche
            part = {"total": total, "intrinsic": base, "niche": total - base}[component]
            parts.append(part.cpu().numpy())
            names.append(tensors[RECEIVER_INDEX_KEY].numpy())
        adata = self._validate_anndata(adata)
        rows = np.concatenate(names)
        return pd.DataFrame(
            np.concatenate(parts), index=adata.obs_names[rows], columns=adata.var_names.copy()
        )

    @torch.inference_mode()
    @lucidvi_dsp.dedent
    def get_attention(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 256,
    ) -> pd.DataFrame:
        """Attention weights per receiver, head and neighbour (and the null slot).

        Parameters
        ----------
        %(model_adata)s
        %(model_receivers)s
        %(model_batch_size)s

        Returns
        -------
        Long table with one row per receiver, head and occupied slot: ``cell`` (receiver name),
        ``cell_index``, ``cell_type``, ``head``, ``neighbor`` (sender name; ``None`` for the
        null slot), ``neighbor_index`` (``-1`` for the null slot), ``neighbor_type`` (``None``
        for the null slot), ``distance`` (NaN for the null slot), ``weight`` (each
        receiver's weights of a head sum to 1) and ``weighted_effect``: the weight times the
        size (Euclidean norm over genes, on the linear-predictor scale) of the niche term the
        neighbour's value would give through this head at full weight, i.e. the
        value-weighted attention (0 for the null slot).
        """
        if not self.module.n_heads:
            raise ValueError("This model has no attention heads (n_heads=0).")
        return attention_table(self, adata=adata, indices=indices, batch_size=batch_size)

    @torch.inference_mode()
    @lucidvi_dsp.dedent
    def get_niche_embedding(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Each cell's niche embedding: the heads' attention outputs, concatenated.

        Parameters
        ----------
        %(model_adata)s
        %(model_indices)s
        %(model_batch_size)s

        Returns
        -------
        Array of shape ``(n_cells, n_latent)`` (head 0's dimensions first).
        """
        if not self.module.n_heads:
            raise ValueError("This model has no attention heads (n_heads=0).")
        parts = [
            inference["head_outputs"].flatten(1).cpu().numpy()
            for _, inference, _ in self._outputs(adata, indices, batch_size)
        ]
        return np.concatenate(parts)

    @torch.inference_mode()
    @lucidvi_dsp.dedent
    def get_log_likelihood(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Log-likelihood of each cell's expression under the model.

        Parameters
        ----------
        %(model_adata)s
        %(model_indices)s
        %(model_batch_size)s

        Returns
        -------
        Array of shape ``(n_cells,)``: summed over genes, in nats.
        """
        values = []
        for tensors, _, generative in self._outputs(adata, indices, batch_size):
            predictor = generative["intrinsic"] + generative["niche"]
            x = tensors[REGISTRY_KEYS.X_KEY].to(predictor.device)
            labels = tensors[REGISTRY_KEYS.LABELS_KEY].to(predictor.device)
            values.append(self.module.log_likelihood(x, predictor, labels).cpu().numpy())
        return np.concatenate(values)
