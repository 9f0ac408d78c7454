"""The only place that reaches into private scvi-tools helpers (kept in one file to track)."""

from __future__ import annotations

import numpy as np
from scvi.model.base._save_load import _load_saved_files


def saved_var_names(dir_path: str, prefix: str | None = None) -> np.ndarray:
    """Gene names stored with a model saved by ``model.save(dir_path)``.

    Parameters
    ----------
    dir_path
        Folder the model was saved to.
    prefix
        File-name prefix used when saving.

    Returns
    -------
    Array of the training data's ``var_names``.
    """
    _, var_names, _, _ = _load_saved_files(
        dir_path, load_adata=False, prefix=prefix, map_location="cpu"
    )
    return np.asarray(var_names)
