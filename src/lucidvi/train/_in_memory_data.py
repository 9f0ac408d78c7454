"""Minibatches cut straight from the registered arrays, without per-batch AnnData indexing."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter

from lucidvi._docstrings import lucidvi_dsp

from ._sparse import csr_with_one_index_dtype

_FLOAT_KEYS = (REGISTRY_KEYS.X_KEY, REGISTRY_KEYS.CONT_COVS_KEY, REGISTRY_KEYS.SIZE_FACTOR_KEY)


def _as_2d_array(
    values: np.ndarray | pd.DataFrame | sp.spmatrix,
    key: str,
    dense_limit_bytes: int,
    float_keys: tuple[str, ...] = _FLOAT_KEYS,
) -> np.ndarray | sp.csr_matrix:
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    dtype = np.float32 if key in float_keys else np.int64
    if sp.issparse(values):
        if np.prod(values.shape) * np.dtype(dtype).itemsize > dense_limit_bytes:
            # once here, so that the loaders of every epoch and split get it as it is
            return csr_with_one_index_dtype(sp.csr_matrix(values, dtype=dtype))
        values = values.toarray()
    values = np.asarray(values, dtype=dtype)
    return values.reshape(-1, 1) if values.ndim == 1 else values


@lucidvi_dsp.dedent
class InMemoryBatchLoader:
    """Iterate over minibatches of registered arrays held in memory.

    Sparse matrices (CSR) are sliced by rows and only the minibatch is densified.

    Parameters
    ----------
    arrays
        Registry key -> array with one row per cell (numpy or scipy CSR).
    indices
        Cells to iterate over.
    batch_size
        Minibatch size.
    %(loader_options)s
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray | sp.csr_matrix],
        indices: np.ndarray,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        pin_memory: bool = False,
    ):
        self.arrays = {
            key: csr_with_one_index_dtype(values)
            if getattr(values, "format", None) == "csr"
            else values
            for key, values in arrays.items()
        }
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rng = np.random.default_rng(seed)
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        batch = {}
        for key, values in self.arrays.items():
            part = values[rows]
            tensor = torch.from_numpy(part.toarray() if sp.issparse(part) else part)
            batch[key] = tensor.pin_memory() if self.pin_memory else tensor
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = self._rng.permutation(self.indices) if self.shuffle else self.indices
        for i in range(len(self)):
            rows = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self._batch(rows)


class InMemoryDataSplitter(DataSplitter):
    """A :class:`~scvi.dataloaders.DataSplitter` whose loaders cut minibatches from memory.

    The split into training, validation and test cells is scvi-tools' own (same seed, same
    indices); only the loaders differ: :class:`InMemoryBatchLoader` slices the registered arrays
    directly, which removes most of the per-step data-loading overhead for data that fits in
    memory. Sparse counts are densified once when the dense copy is small
    (``dense_limit_bytes``), and otherwise stay sparse.

    Parameters
    ----------
    adata_manager
        The model's :class:`~scvi.data.AnnDataManager`.
    train_size
        Fraction of cells for training (scvi-tools' default when ``None``).
    validation_size
        Fraction of cells for validation.
    shuffle_set_split
        Shuffle cells before splitting.
    batch_size
        Minibatch size.
    drop_last
        Drop a last, incomplete training minibatch.
    pin_memory
        Return minibatches in page-locked memory (faster copies to a GPU).
    distributed_sampler
        Must be ``False``: the in-memory loaders do not shard cells across processes.
    load_sparse_tensor
        Accepted for compatibility with ``train()``; minibatches are always dense.
    dense_limit_bytes
        A sparse matrix whose dense float32 copy fits in this many bytes is densified once
        (cutting dense minibatches is ~10x faster than slicing CSR rows); larger ones stay
        sparse and only each minibatch's rows are densified.
    **kwargs
        Other :class:`~scvi.dataloaders.DataSplitter` arguments (``external_indexing``, ...).
    """

    _float_keys: tuple[str, ...] = _FLOAT_KEYS
    _loader_cls: type[InMemoryBatchLoader] = InMemoryBatchLoader

    def __init__(
        self,
        adata_manager: AnnDataManager,
        train_size: float | None = None,
        validation_size: float | None = None,
        shuffle_set_split: bool = True,
        batch_size: int = 128,
        drop_last: bool = False,
        pin_memory: bool = False,
        distributed_sampler: bool = False,
        load_sparse_tensor: bool = False,
        dense_limit_bytes: int = 256 * 2**20,
        **kwargs,
    ):
        if distributed_sampler:
            raise ValueError(
                "The in-memory minibatch loaders do not support distributed (multi-process) "
                "training. Train on one device, or pass your own `datamodule=` to train()."
            )
        super().__init__(
            adata_manager,
            train_size=train_size,
            validation_size=validation_size,
            shuffle_set_split=shuffle_set_split,
            batch_size=batch_size,
            drop_last=drop_last,
            pin_memory=pin_memory,
            **kwargs,
        )
        self.arrays = {
            key: _as_2d_array(
                adata_manager.get_from_registry(key), key, dense_limit_bytes, self._float_keys
            )
            for key in adata_manager.data_registry
        }

    def _loader(self, indices: np.ndarray, train: bool) -> InMemoryBatchLoader:
        return self._loader_cls(
            self.arrays,
            indices,
            batch_size=self.data_loader_kwargs["batch_size"],
            shuffle=train,
            drop_last=self.drop_last if train else False,
            seed=settings.seed,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> InMemoryBatchLoader:
        """Loader over the training cells, reshuffled every epoch.

        Raises
        ------
        RuntimeError
            When the trainer runs several processes (e.g. ``devices=2``): every process
            would train on all the cells, doing the same work twice.
        """
        trainer = getattr(self, "trainer", None)
        world_size = getattr(trainer, "world_size", 1) if trainer is not None else 1
        if world_size > 1:
            raise RuntimeError(
                f"The trainer runs {world_size} processes, but the in-memory loaders do not "
                "split the cells between them: each would train on all of them. Train with "
                "devices=1."
            )
        return self._loader(self.train_idx, train=True)

    def val_dataloader(self) -> InMemoryBatchLoader | list:
        """Loader over the validation cells (empty list when there are none)."""
        return self._loader(self.val_idx, train=False) if len(self.val_idx) else []

    def test_dataloader(self) -> InMemoryBatchLoader | list:
        """Loader over the test cells (empty list when there are none)."""
        return self._loader(self.test_idx, train=False) if len(self.test_idx) else []
