"""Training machinery: in-memory minibatches, a lighter training plan and batch EM."""

from ._device import torch_device
from ._em_restarts import fit_em_restarts
from ._epoch_logging_plan import EpochLoggingTrainingPlan
from ._expectation_maximization import (
    CountChunks,
    EMFit,
    component_log_likelihood_in_chunks,
    fit_em,
    initialize_parameters,
    posterior_in_chunks,
)
from ._in_memory_data import InMemoryBatchLoader, InMemoryDataSplitter
from ._neighborhood_data import (
    NeighborhoodBatchLoader,
    NeighborhoodDataSplitter,
    neighborhood_loader,
)
from ._seeding import isolated_seed

__all__ = [
    "CountChunks",
    "EMFit",
    "EpochLoggingTrainingPlan",
    "InMemoryBatchLoader",
    "InMemoryDataSplitter",
    "NeighborhoodBatchLoader",
    "NeighborhoodDataSplitter",
    "component_log_likelihood_in_chunks",
    "fit_em",
    "fit_em_restarts",
    "initialize_parameters",
    "isolated_seed",
    "neighborhood_loader",
    "posterior_in_chunks",
    "torch_device",
]
