"""scvi-tools modules (inference, generative model and loss) of lucidvi's models."""

from ._interaction import InteractionModule
from ._linear_vae import LinearVAE
from ._nb_mixture import NBMixture

__all__ = ["InteractionModule", "LinearVAE", "NBMixture"]
