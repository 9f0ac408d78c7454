"""Train lucidvi's neural models on simulated data, possibly under Lightning DDP (a script).

Run by ``test_distributed.py`` as ``python ddp_training_script.py OUT DEVICES SEED [SEED ...]``.
Under DDP, Lightning's launcher starts this script again for the second process, and the two
train together. Each process writes, per model and seed, the cells its training loader gave it
in every epoch; process 0 also writes each model's held-out (validation) ELBO and saves it.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import scvi
import torch

import lucidvi
from lucidvi.train import ArrayBatchLoader, NeighborhoodBatchLoader

OUT, DEVICES, SEEDS = Path(sys.argv[1]), int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
N_CELLS, EPOCHS, BATCH_SIZE = 800, 8, 64
warnings.simplefilter("ignore")

seen: list[np.ndarray] = []


def _recording(batch):
    def recording_batch(self, rows, block, at):
        if self.shuffle:  # a training loader: record which cells this process trains on
            seen.append(np.array(rows))
        return batch(self, rows, block, at)

    return recording_batch


for loader in (ArrayBatchLoader, NeighborhoodBatchLoader):
    loader._batch = _recording(loader._batch)


def _data_and_model(name: str):
    if name == "mixture":
        adata = lucidvi.data.simulate_nb_mixture(n=N_CELLS, p=60, k=3, seed=0)
        lucidvi.model.MixtureVI.setup_anndata(adata)
        model = lucidvi.model.MixtureVI(adata, n_clusters=3)
        return model, {"method": "amortized", "em_subsample": 0, "progress_bar": False}
    if name == "interaction":
        adata = lucidvi.data.simulate_spatial_niches(
            lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=N_CELLS, seed=0
        )
        lucidvi.model.InteractionVI.setup_anndata(
            adata, labels_key="cell_type", layer="counts", n_neighbors=8
        )
        model = lucidvi.model.InteractionVI(adata, n_heads=2, n_latent=8)
        # the niche calibration after DDP training: its result compared between processes
        return model, {"calibrate": DEVICES > 1, "enable_progress_bar": False}
    adata = lucidvi.data.simulate_linear(n_cells=N_CELLS, n_genes=60, n_factors=3, seed=0)
    lucidvi.model.LinearVI.setup_anndata(adata)
    return lucidvi.model.LinearVI(adata, n_latent=3), {"enable_progress_bar": False}


results = {}
for name in ("linear", "mixture", "interaction"):
    for seed in SEEDS:
        scvi.settings.seed = seed
        model, kwargs = _data_and_model(name)
        seen.clear()
        model.train(
            max_epochs=EPOCHS,
            accelerator="cpu",
            devices=DEVICES,
            # two processes take a minibatch each per step: the same cells per step as one
            batch_size=BATCH_SIZE * (2 // DEVICES),
            early_stopping=True,
            check_val_every_n_epoch=1,
            **({"strategy": "ddp"} if DEVICES > 1 else {}),
            **kwargs,
        )
        rank = model.trainer.global_rank if model.trainer is not None else 0
        np.save(OUT / f"{name}_seed{seed}_rank{rank}.npy", np.concatenate(seen))
        if name == "interaction" and DEVICES > 1:
            table = model.get_niche_calibration()
            table.to_csv(OUT / f"calibration_rank{rank}.csv")
        if rank == 0:
            model.save(OUT / f"{name}_seed{seed}", overwrite=True)
            loaded = type(model).load(str(OUT / f"{name}_seed{seed}"), adata=model.adata)
            reloaded = all(
                torch.equal(value, loaded.module.state_dict()[key])
                for key, value in model.module.state_dict().items()
            )
            # the validation cells' ELBO of the last epoch, summed over both processes' cells
            elbo = model.history["elbo_validation"]["elbo_validation"].iloc[-1]
            results[f"{name}_seed{seed}"] = {
                "train_indices": model.train_indices.tolist(),
                "elbo": float(elbo),
                "epochs": int(model.history["elbo_validation"].shape[0]),
                "reloaded": reloaded,
            }
if results:
    (OUT / f"results_devices{DEVICES}.json").write_text(json.dumps(results))
