"""Plain torch building blocks: encoder, linear decoder, attention and fast likelihoods."""

from ._encoder import GaussianEncoder
from ._likelihoods import (
    expression_log_likelihood,
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
    "expression_log_likelihood",
    "log_factorial_sum",
    "nb_log_likelihood",
    "poisson_log_likelihood",
    "zinb_log_likelihood",
]
