"""scvi-tools modules (inference, generative model and loss) of lucidvi's models."""

from ._linear_vae import LinearVAE

__all__ = ["LinearVAE"]
