"""Training machinery: in-memory minibatches, a lighter training plan and batch EM."""

from ._epoch_logging_plan import EpochLoggingTrainingPlan
from ._expectation_maximization import (
    CountChunks,
    EMFit,
    fit_em,
    initialize_parameters,
    posterior_in_chunks,
)
from ._in_memory_data import InMemoryBatchLoader, InMemoryDataSplitter

__all__ = [
    "CountChunks",
    "EMFit",
    "EpochLoggingTrainingPlan",
    "InMemoryBatchLoader",
    "InMemoryDataSplitter",
    "fit_em",
    "initialize_parameters",
    "posterior_in_chunks",
]
