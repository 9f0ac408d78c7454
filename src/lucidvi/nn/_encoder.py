"""A fully connected encoder to a diagonal Gaussian posterior."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal


class GaussianEncoder(nn.Module):
    """Encode inputs into ``q(z | x) = N(mean(x), diag(var(x)))``.

    ``n_layers`` blocks of Linear -> BatchNorm -> ReLU -> Dropout, then a linear head for the
    mean and the log-variance (the architecture of scvi-tools' ``Encoder``, with the two heads
    in one matrix product). The returned distribution skips argument validation, which costs
    more than the layers at small sizes.

    Parameters
    ----------
    n_input
        Input dimension.
    n_output
        Latent dimension.
    n_hidden
        Width of the hidden layers.
    n_layers
        Number of hidden layers.
    dropout_rate
        Dropout rate after each hidden layer.
    var_eps
        Added to the variance for numerical stability.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        var_eps: float = 1e-4,
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(n_layers):
            blocks += [
                nn.Linear(n_input if i == 0 else n_hidden, n_hidden),
                nn.BatchNorm1d(n_hidden, momentum=0.01, eps=0.001),
                nn.ReLU(),
                nn.Dropout(dropout_rate),
            ]
        self.hidden = nn.Sequential(*blocks)
        self.head = nn.Linear(n_hidden if n_layers else n_input, 2 * n_output)
        self.var_eps = var_eps

    def forward(self, x: torch.Tensor) -> Normal:
        """Return the posterior distribution for inputs ``x`` of shape ``(n_cells, n_input)``."""
        mean, log_variance = self.head(self.hidden(x)).chunk(2, dim=-1)
        scale = torch.sqrt(torch.exp(log_variance) + self.var_eps)
        return Normal(mean, scale, validate_args=False)
