"""Best of several EM starts: the one restart loop of batch EM, with failed starts set aside."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np

from lucidvi.module import NBMixture

from ._count_chunks import CountChunks
from ._expectation_maximization import EMFit, fit_em

logger = logging.getLogger(__name__)


def fit_em_restarts(
    module: NBMixture,
    chunks: CountChunks,
    start: Callable[[int], np.ndarray],
    n_init: int,
    seed: int,
    max_iter: int = 500,
    tol: float = 1e-6,
    progress_bar: bool = True,
) -> EMFit:
    """Run :func:`fit_em` from ``n_init`` starts and keep the parameters of the best.

    A start whose EM reaches a non-finite log-likelihood (an overflow in its Newton steps) is
    set aside with a warning, and the next start is tried; its numbers are never kept.

    Parameters
    ----------
    module
        The mixture; holds the best start's parameters on return.
    chunks
        The cells.
    start
        Initial responsibilities ``(n_cells, K)`` for a start's seed.
    n_init
        Number of starts, with seeds ``seed, seed + 1, ...``.
    seed
        Seed of the first start.
    max_iter
        Maximum EM iterations per start.
    tol
        Relative change of the log-likelihood at which EM stops.
    progress_bar
        Show a progress bar per start.

    Returns
    -------
    The best start's fit.

    Raises
    ------
    FloatingPointError
        If every start failed.
    """
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}.")
    best, best_state, failures = None, None, []
    for restart in range(n_init):
        try:
            fit = fit_em(
                module,
                chunks,
                start(seed + restart),
                max_iter=max_iter,
                tol=tol,
                progress_bar=progress_bar,
                description=f"EM (start {restart + 1}/{n_init})",
            )
        except FloatingPointError as error:
            failures.append(str(error))
            warnings.warn(
                f"EM start {restart + 1} of {n_init} failed ({error}); it is left out.",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        logger.info("EM start %d: log-likelihood %.6g", restart, fit.log_likelihood)
        if best is None or fit.log_likelihood > best.log_likelihood:
            best = fit
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if best is None:
        raise FloatingPointError(
            f"Every EM start failed ({failures[-1]}). Check the counts for extreme values, "
            "or train with more starts (n_init) or another init."
        )
    module.load_state_dict(best_state)
    return best
