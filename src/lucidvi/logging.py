"""Experiment logging: Lightning loggers for ``model.train(logger=...)`` and the wandb import."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from lightning.pytorch.loggers import WandbLogger

__all__ = ["require_wandb", "wandb_logger"]


def require_wandb() -> ModuleType:
    """Import and return ``wandb``, or raise an ImportError naming the extra to install.

    Returns
    -------
    The ``wandb`` module.

    Raises
    ------
    ImportError
        If wandb is not installed (``pip install 'lucidvi[wandb]'``).
    """
    try:
        import wandb
    except ImportError as error:
        raise ImportError(
            "Logging to Weights & Biases needs wandb: pip install 'lucidvi[wandb]'."
        ) from error
    return wandb


def wandb_logger(
    project: str = "lucidvi",
    name: str | None = None,
    offline: bool = False,
    save_dir: str | os.PathLike = ".",
    **kwargs: Any,
) -> WandbLogger:
    """Build a Weights & Biases logger to pass to ``model.train(logger=...)``.

    Parameters
    ----------
    project
        W&B project name.
    name
        Run name (W&B picks one when ``None``).
    offline
        Write the run to ``save_dir/wandb`` without contacting the server; sync it later with
        ``wandb sync``.
    save_dir
        Folder for the run files.
    **kwargs
        Passed to :class:`lightning.pytorch.loggers.WandbLogger` (``tags``, ``config``, ...).

    Returns
    -------
    The logger; ``logger.experiment`` is the underlying ``wandb`` run.

    Raises
    ------
    ImportError
        If wandb is not installed (``pip install 'lucidvi[wandb]'``).

    Examples
    --------
    >>> from lucidvi.logging import wandb_logger
    >>> logger = wandb_logger(project="pbmc", offline=True)
    >>> model.train(max_epochs=100, logger=logger)  # doctest: +SKIP
    """
    require_wandb()
    from lightning.pytorch.loggers import WandbLogger

    if offline:
        # Lightning only sets WANDB_MODE, which wandb ignores once it has been set up in this
        # process (e.g. after an earlier wandb.init); the explicit mode always holds.
        kwargs.setdefault("mode", "offline")
    return WandbLogger(
        project=project, name=name, offline=offline, save_dir=str(save_dir), **kwargs
    )
