"""Plain torch building blocks: encoder, linear decoder and fast count likelihoods."""

from ._encoder import GaussianEncoder
from ._likelihoods import (
    log_factorial_sum,
    nb_log_likelihood,
    poisson_log_likelihood,
    zinb_log_likelihood,
)
from ._linear_decoder import LinearDecoder
from ._neighborhood_attention import NeighborhoodAttention

__all__ = [
    "GaussianEncoder",
    "LinearDecoder",
    "NeighborhoodAttention",
    "log_factorial_sum",
    "nb_log_likelihood",
    "poisson_log_likelihood",
    "zinb_log_likelihood",
]
