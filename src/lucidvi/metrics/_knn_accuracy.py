"""How well an embedding separates known labels: cross-validated kNN classification."""

from __future__ import annotations

import numpy as np
import pandas as pd


def knn_accuracy(
    embedding: np.ndarray,
    labels: np.ndarray | pd.Series,
    n_neighbors: int = 15,
    n_folds: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier of labels from an embedding.

    Stratified folds: each cell's label is predicted by the majority of its ``n_neighbors``
    nearest cells (Euclidean) among the other folds, so the score measures how well the
    embedding alone places cells with their own type.

    Parameters
    ----------
    embedding
        Array of shape ``(n_cells, n_dims)``.
    labels
        One label per cell.
    n_neighbors
        Neighbours that vote.
    n_folds
        Number of cross-validation folds.
    seed
        Seed of the fold assignment.

    Returns
    -------
    The fraction of cells whose label is predicted correctly.

    Notes
    -----
    Classes with fewer cells than ``n_folds`` cannot be stratified; scikit-learn then warns
    and some folds lack them, which lowers the score only through those cells.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    embedding = np.asarray(embedding, dtype=np.float64)
    labels = np.asarray(labels)
    if embedding.ndim != 2 or embedding.shape[0] != labels.shape[0]:
        raise ValueError(
            f"embedding must be cells x dims with one label per cell, got {embedding.shape} "
            f"and {labels.shape[0]} labels."
        )
    if not np.isfinite(embedding).all():
        raise ValueError("embedding contains NaN or infinite values.")
    if pd.isna(labels).any():
        raise ValueError("labels have missing values; score the labelled cells only.")
    if n_folds < 2 or labels.shape[0] < n_folds * (n_neighbors + 1):
        raise ValueError(
            f"Need n_folds >= 2 and at least n_folds * (n_neighbors + 1) = "
            f"{n_folds * (n_neighbors + 1)} cells, got n_folds={n_folds}, {labels.shape[0]} cells."
        )
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(
        KNeighborsClassifier(n_neighbors=n_neighbors), embedding, labels, cv=folds
    )
    return float(np.mean(predicted == labels))
