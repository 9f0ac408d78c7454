"""Copies of AnnData objects that a second model can register without touching the first."""

from __future__ import annotations

from anndata import AnnData


def unregistered_copy(adata: AnnData) -> AnnData:
    """Return a copy of ``adata`` without scvi-tools' registration keys.

    A copy keeps ``uns["_scvi_uuid"]``; registering it again would re-register the original's
    identity and break the model trained on the original. Dropping the keys gives the copy its
    own identity.

    Parameters
    ----------
    adata
        Any AnnData, registered or not.

    Returns
    -------
    The copy.
    """
    copy = adata.copy()
    for key in [k for k in copy.uns if k.startswith("_scvi")]:
        del copy.uns[key]
    return copy
