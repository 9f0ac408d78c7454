"""Bundled real data sets, gene-set collections and simulators with known truth."""

from ._bundled import cbmc, cycif, gene_sets, pbmc68k, read_gmt
from ._ligand_receptor import ligand_receptor_pairs
from ._merfish_retina import default_cache_dir, merfish_retina
from ._receptor_targets import receptor_targets
from ._simulate import simulate_linear
from ._simulate_mixture import simulate_nb_mixture
from ._simulate_spatial import simulate_spatial_niches

__all__ = [
    "cbmc",
    "cycif",
    "default_cache_dir",
    "gene_sets",
    "ligand_receptor_pairs",
    "merfish_retina",
    "pbmc68k",
    "read_gmt",
    "receptor_targets",
    "simulate_linear",
    "simulate_nb_mixture",
    "simulate_spatial_niches",
]
