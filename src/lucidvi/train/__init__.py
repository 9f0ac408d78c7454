"""Training machinery: in-memory minibatches, a lighter training plan, batch EM and refits."""

from ._count_chunks import CountChunks
from ._device import torch_device
from ._em_restarts import fit_em_restarts
from ._epoch_logging_plan import EpochLoggingTrainingPlan
from ._expectation_maximization import (
    EMFit,
    component_log_likelihood_in_chunks,
    fit_em,
    initialize_parameters,
    posterior_in_chunks,
)
from ._in_memory_data import InMemoryBatchLoader, InMemoryDataSplitter
from ._intrinsic_refit import refit_intrinsic
from ._neighborhood_data import (
    NeighborhoodBatchLoader,
    NeighborhoodDataSplitter,
    neighborhood_loader,
)
from ._niche_calibration import calibrate_niche
from ._seeding import isolated_seed

__all__ = [
    "CountChunks",
    "EMFit",
    "EpochLoggingTrainingPlan",
    "InMemoryBatchLoader",
    "InMemoryDataSplitter",
    "NeighborhoodBatchLoader",
    "NeighborhoodDataSplitter",
    "calibrate_niche",
    "component_log_likelihood_in_chunks",
    "fit_em",
    "fit_em_restarts",
    "initialize_parameters",
    "isolated_seed",
    "neighborhood_loader",
    "posterior_in_chunks",
    "refit_intrinsic",
    "torch_device",
]
