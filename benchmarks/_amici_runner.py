"""Train AMICI (PyPI ``amici-st``) through its public API and print its throughput as JSON.

Run by ``benchmarks/interactionvi.py --amici-python PATH`` with the Python of a separate
environment that has ``amici-st`` (it pins scvi-tools 1.2.2). Usage::

    python _amici_runner.py DATA.h5ad N_NEIGHBORS N_HEADS EPOCHS BATCH_SIZE [RECEIVERS]

With RECEIVERS (comma-separated cell types), it then times AMICI's interpretation: explained
variance with its permutation test, attention patterns, and neighbour ablation of each
receiver type (seconds under the names of lucidvi's results; errors are reported, not raised).

AMICI imports ``transformer_lens.hook_points`` only; importing the whole of transformer-lens
fails next to the pyarrow that its other dependencies need, so that package's ``__init__`` is
skipped and only the submodule is loaded from its folder.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time
import types


def _skip_transformer_lens_init() -> None:
    spec = importlib.util.find_spec("transformer_lens")
    package = types.ModuleType("transformer_lens")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["transformer_lens"] = package


def main() -> None:
    """Train AMICI on the given file and print seconds, cells/s and peak memory."""
    path, n_neighbors, n_heads, epochs, batch_size = sys.argv[1:6]
    _skip_transformer_lens_init()
    import amici
    import anndata

    adata = anndata.read_h5ad(path)
    amici.AMICI.setup_anndata(
        adata, labels_key="cell_type", coord_obsm_key="spatial", n_neighbors=int(n_neighbors)
    )
    model = amici.AMICI(adata, n_heads=int(n_heads))
    start = time.perf_counter()
    model.train(
        max_epochs=int(epochs), train_size=1.0, batch_size=int(batch_size),
        enable_progress_bar=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    report = {
        "seconds": seconds, "cells_per_s": int(epochs) * adata.n_obs / seconds,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }  # fmt: skip
    if len(sys.argv) > 6:
        report.update(_interpretation_seconds(model, sys.argv[6].split(",")))
    print(json.dumps(report))


def _interpretation_seconds(model, receivers: list[str]) -> dict:
    """Seconds of AMICI's explained variance, attention patterns and ablations."""
    calls = {
        "ExplainedVariance": lambda: model.get_expl_variance_scores(run_permutation_test=True),
        "AttentionPatterns": lambda: model.get_attention_patterns(prog_bar=False),
        "NeighborAblation": lambda: [
            model.get_neighbor_ablation_scores(
                cell_type=receiver, head_idx=None, compute_z_value=True
            )
            for receiver in receivers
        ],
    }
    report, errors = {}, {}
    for name, call in calls.items():
        start = time.perf_counter()
        try:
            call()
            report[name] = time.perf_counter() - start
        except Exception as error:  # report AMICI's failures next to the timings
            errors[name] = f"{type(error).__name__}: {error}"
    report["errors"] = errors
    return report


if __name__ == "__main__":
    main()
