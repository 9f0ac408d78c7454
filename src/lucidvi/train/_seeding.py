"""Seed a training run without changing the caller's global random state or scvi's seed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from scvi import settings


@contextmanager
def isolated_seed(seed: int) -> Iterator[None]:
    """Run a block with ``scvi.settings.seed = seed``, then restore everything it touched.

    scvi-tools' data splitters read ``scvi.settings.seed`` and Lightning's modules draw from the
    global torch, numpy and Python generators; setting the seed re-seeds all of them and makes
    cuDNN deterministic. Inside the block the run is reproducible from ``seed``; afterwards
    ``scvi.settings.seed``, the three generators' states, cuDNN's flags and Lightning's
    ``PL_GLOBAL_SEED`` variable are as before.

    Parameters
    ----------
    seed
        Seed of the block.
    """
    previous_seed = settings.seed
    lightning_seed = os.environ.get("PL_GLOBAL_SEED")
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            settings.seed = seed
            yield
        finally:
            settings.seed = previous_seed  # re-seeds the generators: restore their states next
            np.random.set_state(numpy_state)
            random.setstate(python_state)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
            if lightning_seed is None:
                os.environ.pop("PL_GLOBAL_SEED", None)
            else:
                os.environ["PL_GLOBAL_SEED"] = lightning_seed
