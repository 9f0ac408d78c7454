"""CSR matrices whose indptr and indices differ in type are unified once, not per slice."""

import numpy as np
import scipy.sparse as sp
import torch

from lucidvi.train import ArrayBatchLoader, CountChunks
from lucidvi.train._sparse import csr_with_one_index_dtype


def _mixed(seed: int = 0) -> sp.csr_matrix:
    """A CSR matrix stored with an int64 indptr and int32 indices, as some writers store it."""
    matrix = sp.random(50, 30, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    matrix.data = np.ceil(matrix.data * 5)
    mixed = sp.csr_matrix(matrix.shape, dtype=np.float32)
    mixed.data = matrix.data
    mixed.indices = matrix.indices.astype(np.int32)
    mixed.indptr = matrix.indptr.astype(np.int64)
    return mixed


def test_index_types_are_unified_without_touching_the_users_matrix():
    mixed = _mixed()
    unified = csr_with_one_index_dtype(mixed)
    assert unified.indptr.dtype == unified.indices.dtype == np.int32
    assert mixed.indptr.dtype == np.int64 and mixed.indices.dtype == np.int32
    np.testing.assert_array_equal(unified.toarray(), mixed.toarray())
    assert csr_with_one_index_dtype(unified) is unified


def test_minibatches_and_em_chunks_read_the_same_values():
    mixed = _mixed()
    dense = mixed.toarray()
    loader = ArrayBatchLoader({"X": mixed}, np.arange(50), batch_size=16, seed=0)
    assert loader.arrays["X"].indptr.dtype == loader.arrays["X"].indices.dtype
    got = torch.cat([batch["X"] for batch in loader]).numpy()
    np.testing.assert_array_equal(got, dense)
    chunks = CountChunks(mixed, np.zeros(50), np.zeros(50, dtype=np.int64))
    assert chunks.counts.indptr.dtype == chunks.counts.indices.dtype
    np.testing.assert_array_equal(torch.cat([x for _, x, _, _ in chunks]).numpy(), dense)
