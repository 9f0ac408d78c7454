import numpy as np
import pytest

from lucidvi.interpretation import GeneRanks
from lucidvi.metrics import log_normalize_counts


def test_prediction_built_from_known_genes_ranks_them_first(planted):
    expression = log_normalize_counts(planted.layers["counts"]).toarray()
    rng = np.random.default_rng(0)
    known = rng.choice(planted.n_vars, 15, replace=False)
    mean = np.tile(expression.mean(0), (planted.n_obs, 1))
    local = mean.copy()
    local[:, known] = expression[:, known] + rng.normal(0, 0.05, (planted.n_obs, 15))
    result = GeneRanks.compute(planted, local, mean, layer="counts", names=("local", "global"))
    first = result.table.sort_values("rank_local").head(15)
    assert set(first["gene"]) == set(planted.var_names[known])
    assert sorted(first["rank_local"]) == list(range(1, 16))
    np.testing.assert_allclose(result.table["r2_global"], 0.0, atol=1e-9)


def test_layer_names_and_errors(planted):
    adata = planted.copy()
    expression = log_normalize_counts(adata.layers["counts"]).toarray()
    adata.layers["perfect"] = expression
    adata.layers["zero"] = np.zeros_like(expression)
    result = GeneRanks.compute(adata, "perfect", "zero", layer="counts", names=("a", "b"))
    np.testing.assert_allclose(result.table["r2_a"], 1.0)
    assert (result.table["r2_b"] < 0).all()  # predicting 0 is worse than each gene's mean
    with pytest.raises(ValueError, match="not in adata.layers"):
        GeneRanks.compute(adata, "missing", "zero", layer="counts")
    with pytest.raises(ValueError, match="shape"):
        GeneRanks.compute(adata, expression[:, :3], "zero", layer="counts")
    with pytest.raises(ValueError, match="different names"):
        GeneRanks.compute(adata, "perfect", "zero", layer="counts", names=("a", "a"))
    with pytest.raises(ValueError, match="one of"):
        result.preferred("c")
