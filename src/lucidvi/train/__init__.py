"""Training machinery: minibatches from memory or disk, a lighter training plan, EM and refits."""

from ._array_data import (
    ArrayBatchLoader,
    ArrayDataSplitter,
    RegisteredDataLoader,
    registered_array,
)
from ._count_chunks import CountChunks
from ._dask_blocks import map_over_row_blocks, sum_over_row_blocks
from ._device import torch_device
from ._em_restarts import fit_em_restarts
from ._em_start import initialize_parameters
from ._epoch_logging_plan import EpochLoggingTrainingPlan
from ._expectation_maximization import (
    EMFit,
    component_log_likelihood_in_chunks,
    fit_em,
    posterior_in_chunks,
)
from ._intrinsic_refit import refit_intrinsic
from ._neighborhood_data import (
    NeighborhoodBatchLoader,
    NeighborhoodDataSplitter,
    neighborhood_loader,
)
from ._niche_calibration import calibrate_niche
from ._seeding import isolated_seed
from ._trainer import Trainer, TrainRunner, is_ddp_strategy

__all__ = [
    "ArrayBatchLoader",
    "ArrayDataSplitter",
    "CountChunks",
    "EMFit",
    "EpochLoggingTrainingPlan",
    "NeighborhoodBatchLoader",
    "NeighborhoodDataSplitter",
    "RegisteredDataLoader",
    "calibrate_niche",
    "component_log_likelihood_in_chunks",
    "fit_em",
    "fit_em_restarts",
    "initialize_parameters",
    "isolated_seed",
    "map_over_row_blocks",
    "neighborhood_loader",
    "posterior_in_chunks",
    "TrainRunner",
    "Trainer",
    "is_ddp_strategy",
    "refit_intrinsic",
    "sum_over_row_blocks",
    "registered_array",
    "torch_device",
]
