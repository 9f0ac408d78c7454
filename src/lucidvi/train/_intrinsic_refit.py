"""Refit each cell type's profile and spread of InteractionVI by maximum likelihood."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from lucidvi._constants import RECEIVER_INDEX_KEY
from lucidvi._matrix_rows import read_rows
from lucidvi.module import InteractionModule

from ._count_type_fit import TypeCells, fit_type_counts
from ._neighborhood_data import neighborhood_loader

# Training cells per type in a refit, a random subset beyond. A profile is fitted to a mean
# over the cells, so its error falls as 1 / sqrt(n) and is negligible at 20,000 cells; the cap
# bounds the refit's memory (the cells' counts) and time.
_MAX_REFIT_CELLS = 20_000
# Seed of that subset (and of nothing else), so that a refit is reproducible.
_SUBSET_SEED = 0
# Cells x genes per chunk of the refit's computations (16 MiB of float64 per array).
_CHUNK_ENTRIES = 2**21
# Smallest standard deviation of a Gaussian type's spread: keeps its log finite for a marker
# that is constant in a type's training cells.
_MIN_SPREAD = 1e-6


def cell_types(adata_manager: AnnDataManager) -> list[str]:
    """Return the registered cell types, in the order of their codes.

    Parameters
    ----------
    adata_manager
        Manager of data registered with a labels field.

    Returns
    -------
    The cell types as strings.
    """
    mapping = adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
    return [str(value) for value in mapping.categorical_mapping]


def refit_intrinsic(
    module: InteractionModule,
    adata_manager: AnnDataManager,
    indices: np.ndarray,
    batch_size: int = 256,
) -> list[str]:
    """Refit every type's profile and spread by maximum likelihood, the rest held fixed.

    Stochastic gradient steps leave the type profiles near, not at, their maximum-likelihood
    values; each type's profile (and spread, when per type) is refitted on its training cells
    (at most 20,000, a random subset beyond) with the niche term and the batch offsets held
    fixed. Gaussian data: in closed form (the mean residual, and the root mean squared
    deviation from it). Counts: damped Newton steps from the trained values (see the Notes).
    Should that fail for a type (a non-finite objective), the type keeps its trained values, a
    :class:`RuntimeWarning` names it and it is returned, so that no number computed from it is
    shown as a result.

    The niche term is the only part that needs the cells' neighbours: one pass of
    :func:`~lucidvi.train.neighborhood_loader` over the cells of the types that have a niche
    (scale above 0) keeps a few numbers per cell
    (:meth:`~lucidvi.module.InteractionModule.niche_coordinates`). The counts are read per type
    from the registered matrix (in memory, backed or lazy), and every later pass runs over them
    in chunks.

    Parameters
    ----------
    module
        A trained module (its profiles and spreads are updated in place).
    adata_manager
        Manager of the registered data it was trained on.
    indices
        Training cells.
    batch_size
        Receivers per minibatch when computing the niche terms.

    Returns
    -------
    The cell types whose refit failed.

    Notes
    -----
    For counts, the objective is a type's mean negative log-likelihood plus one pseudo-count
    per gene (a Dirichlet prior on the type's proportions), which keeps the share of a gene
    never seen in the type's training cells above 0 (at 0, a held-out cell with one count of
    that gene would be impossible); a vague normal prior (standard deviation 10) on the log
    inverse dispersions, which keeps those of Poisson-like genes finite; and a quadratic term
    on the profile's sum: the softmax ignores a common shift of the profile, so the term holds
    the shift at its start (it changes no prediction). Its gradient and Hessian have closed
    forms (sums over cells); Newton steps with a line search, in double precision, stop when
    every gradient component is below 1e-8 nats per cell. ``docs/benchmarks.md`` ("Models and
    training") says why the refit is exact.
    """
    module.eval()
    types = cell_types(adata_manager)
    labels = np.asarray(adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY))
    labels = labels.ravel().astype(np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    rng = np.random.default_rng(_SUBSET_SEED)
    subsets = {}
    for code in range(len(types)):
        rows = indices[labels[indices] == code]
        if len(rows) > _MAX_REFIT_CELLS:
            rows = rng.choice(rows, _MAX_REFIT_CELLS, replace=False)
        if len(rows):
            subsets[code] = np.sort(rows)
    coordinates = _niche_coordinates(module, adata_manager, subsets, batch_size)
    failed = []
    for code, rows in subsets.items():
        cells = _type_cells(module, adata_manager, code, rows, coordinates.get(code))
        failure = _refit_type(module, code, cells)
        if failure is not None:
            failed.append(types[code])
            warnings.warn(
                f"Refitting the profile of {types[code]!r} stopped on {failure}; it "
                "keeps its trained values, and is marked 'refit failed'.",
                RuntimeWarning,
                stacklevel=2,
            )
    return failed


def _niche_coordinates(
    module: InteractionModule,
    adata_manager: AnnDataManager,
    subsets: dict[int, np.ndarray],
    batch_size: int,
) -> dict[int, torch.Tensor]:
    """Niche coordinates of the cells of each type with a niche, in one loader pass."""
    if not module.n_heads:
        return {}
    with_niche = [code for code in subsets if float(module.niche_scale[code]) > 0]
    if not with_niche:
        return {}
    rows = np.sort(np.concatenate([subsets[code] for code in with_niche]))
    found = torch.empty(len(rows), module.n_heads * module.readout.shape[-1])
    for tensors in neighborhood_loader(adata_manager, rows, batch_size, keep_order=False):
        where = np.searchsorted(rows, tensors[RECEIVER_INDEX_KEY].numpy())
        found[torch.from_numpy(where)] = module.niche_coordinates(tensors).cpu()
    return {
        code: found[torch.from_numpy(np.searchsorted(rows, subsets[code]))] for code in with_niche
    }


def _type_cells(
    module: InteractionModule,
    adata_manager: AnnDataManager,
    code: int,
    rows: np.ndarray,
    coordinates: torch.Tensor | None,
) -> TypeCells:
    """Read a type's counts in chunks (once); its fixed terms are built per chunk on demand."""
    matrix = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    batches = np.asarray(adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
    batches = torch.from_numpy(batches.ravel().astype(np.int64)[rows])
    device = module.log_scale.device
    chunk_rows = max(1, _CHUNK_ENTRIES // matrix.shape[1])
    counts, bounds = [], []
    for start in range(0, len(rows), chunk_rows):
        values = read_rows(matrix, rows[start : start + chunk_rows])
        values = values.toarray() if sp.issparse(values) else values
        counts.append(torch.as_tensor(np.asarray(values, dtype=np.float32), device=device))
        bounds.append(slice(start, start + len(values)))
    offsets = module.batch_offset.weight.detach().double()

    def fixed(position: int) -> torch.Tensor:
        chunk = bounds[position]
        terms = offsets[batches[chunk].to(device)]
        if coordinates is not None:
            labels = torch.full((len(terms),), code, device=device)
            terms = terms + module.niche_from_coordinates(
                coordinates[chunk].to(device, torch.float64), labels
            )
        return terms

    varying = coordinates is not None or len(torch.unique(batches)) > 1
    return TypeCells(counts, fixed, varying)


def _refit_type(module: InteractionModule, code: int, cells: TypeCells) -> str | None:
    """Maximum-likelihood profile (and spread, when per type) of one type, the rest fixed.

    Returns
    -------
    ``None``, or why the fit failed (the trained values then stay).
    """
    per_type = module.spread_per_type
    if module.likelihood == "gaussian":
        with torch.no_grad():
            profile = _mean(_residuals(cells))
            spread = None
            if per_type:
                deviations = (residual - profile for residual in _residuals(cells))
                spread = _mean(d.square() for d in deviations).sqrt().clamp(min=_MIN_SPREAD)
                spread = spread.log()
            module.set_type_parameters(code, profile, spread)
        return None
    profile, log_scale = module.type_parameters(code)
    try:
        with torch.no_grad():
            profile, log_scale = fit_type_counts(cells, profile, log_scale, per_type)
    except RuntimeError as error:
        return str(error)
    if not (torch.isfinite(profile).all() and torch.isfinite(log_scale).all()):
        return "non-finite values"
    module.set_type_parameters(code, profile, log_scale if per_type else None)
    return None


def _residuals(cells: TypeCells) -> Iterator[torch.Tensor]:
    for position, counts in enumerate(cells.counts):
        yield counts.double() - cells.fixed(position)


def _mean(chunks: Iterator[torch.Tensor]) -> torch.Tensor:
    total, n = 0.0, 0
    for chunk in chunks:
        total, n = total + chunk.sum(0), n + len(chunk)
    return total / n
