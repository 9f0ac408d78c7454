"""Look up a matrix of an AnnData by layer name, with errors that say what is available."""

from __future__ import annotations

from typing import Any

from anndata import AnnData


def read_layer(adata: AnnData, layer: str | None) -> tuple[Any, str]:
    """Return ``adata.layers[layer]`` (``adata.X`` when ``layer`` is ``None``) and its name.

    Parameters
    ----------
    adata
        The AnnData.
    layer
        Layer name, or ``None`` for ``adata.X``.

    Returns
    -------
    ``(matrix, where)``: the matrix and its name for messages (``adata.layers['counts']``).

    Raises
    ------
    ValueError
        If the layer does not exist or the matrix is empty.
    """
    if layer is not None and layer not in adata.layers:
        raise ValueError(
            f"layer={layer!r} is not in adata.layers (available: {list(adata.layers.keys())})."
        )
    matrix = adata.X if layer is None else adata.layers[layer]
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if matrix is None:
        raise ValueError(f"{where} is empty; put the data there or pass layer=.")
    return matrix, where
