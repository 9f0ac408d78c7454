"""Training machinery: in-memory minibatches and a lighter scvi-tools training plan."""

from ._epoch_logging_plan import EpochLoggingTrainingPlan
from ._in_memory_data import InMemoryBatchLoader, InMemoryDataSplitter

__all__ = ["EpochLoggingTrainingPlan", "InMemoryBatchLoader", "InMemoryDataSplitter"]
