"""LinearVAE's gene masking: validation and the masks drawn in training."""

import numpy as np
import pytest
import torch

from lucidvi.module import LinearVAE


@pytest.mark.parametrize("bad", [1.0, -0.1, (0.6, 0.2), (0.1, 0.2, 0.3), "half"])
def test_gene_masking_rejects_bad_fractions(bad):
    with pytest.raises(ValueError, match="gene_masking"):
        LinearVAE(n_input=10, gene_masking=bad)


def test_training_masks_hide_the_requested_fraction():
    module = LinearVAE(n_input=200, gene_masking=0.3)
    module.train()
    x = torch.ones(500, 200)
    encoder_input = module._encoder_input(x, None)
    mask = encoder_input[:, 200:]
    assert torch.equal(encoder_input[:, :200], torch.log1p(x) * mask)
    # 100,000 Bernoulli(0.7) draws: the kept fraction is 0.7 within 4 standard errors
    standard_error = np.sqrt(0.7 * 0.3 / mask.numel())
    assert abs(mask.mean().item() - 0.7) < 4 * standard_error
    module.eval()
    assert torch.equal(module._encoder_input(x, None)[:, 200:], torch.ones_like(x))
