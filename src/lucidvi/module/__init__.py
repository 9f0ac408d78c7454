"""scvi-tools modules (inference, generative model and loss) of lucidvi's models."""

from ._linear_vae import LinearVAE
from ._nb_mixture import NBMixture

__all__ = ["LinearVAE", "NBMixture"]
