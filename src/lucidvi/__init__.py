"""Interpretable probabilistic models of single-cell and spatial omics, built on scvi-tools."""

from __future__ import annotations

from . import data, interpretation, logging, metrics, model, module, nn, pl, tl, train

__version__ = "0.1.0"

__all__ = [
    "data",
    "interpretation",
    "logging",
    "metrics",
    "model",
    "module",
    "nn",
    "pl",
    "tl",
    "train",
]
