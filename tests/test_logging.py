import os

import scvi
import wandb

from lucidvi.logging import wandb_logger
from lucidvi.model import LinearVI


def test_wandb_logger_offline_records_the_run(small_adata, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    adata = small_adata.copy()
    LinearVI.setup_anndata(adata, layer="counts")
    model = LinearVI(adata, n_latent=2)
    logger = wandb_logger(project="lucidvi-test", offline=True, save_dir=tmp_path)
    scvi.settings.seed = 0
    model.train(max_epochs=2, logger=logger, enable_progress_bar=False)
    run = logger.experiment
    assert "elbo_train" in run.summary.keys()
    run_root = os.path.dirname(run.dir)
    run.finish()
    # wandb's service process writes the records file; shutting it down waits until it is
    # written (after finish() alone, the file sometimes held only its header)
    wandb.teardown()
    assert run_root.startswith(str(tmp_path)) and "offline-run" in run_root
    (record_file,) = [name for name in os.listdir(run_root) if name.endswith(".wandb")]
    with open(os.path.join(run_root, record_file), "rb") as records:
        assert b"elbo_train" in records.read()  # the metric is in the offline run's records
