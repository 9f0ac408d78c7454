"""Panel selection: the usual rankings, and greedy information maximisation."""

import numpy as np
import pytest
import scanpy as sc
from anndata import AnnData

from lucidvi.tl import select_panel
from lucidvi.tl._panel_selection import _best_gene, _condition_on


def _gaussian_information(covariance, panel, n_vars):
    """I(x_S; z) of jointly Gaussian variables, from log-determinants."""
    target = list(range(n_vars, covariance.shape[0]))
    s_zz = covariance[np.ix_(target, target)]
    if not panel:
        return 0.0
    s_zs, s_ss = covariance[np.ix_(target, panel)], covariance[np.ix_(panel, panel)]
    conditional = s_zz - s_zs @ np.linalg.solve(s_ss, s_zs.T)
    return 0.5 * (np.linalg.slogdet(s_zz)[1] - np.linalg.slogdet(conditional)[1])


def test_each_greedy_step_takes_the_largest_exact_information_gain():
    rng = np.random.default_rng(0)
    n_vars, n_target = 9, 3
    factors = rng.normal(size=(n_vars + n_target, 5))
    covariance = factors @ factors.T + np.diag(rng.uniform(0.2, 1.0, n_vars + n_target))
    working, panel = covariance.copy(), []
    available = np.ones(n_vars, dtype=bool)
    for _ in range(6):
        gene = _best_gene(working, n_vars, available)
        gains = [
            _gaussian_information(covariance, [*panel, g], n_vars) if available[g] else -np.inf
            for g in range(n_vars)
        ]
        assert gene == int(np.argmax(gains))
        panel.append(gene)
        available[gene] = False
        _condition_on(working, gene)


@pytest.fixture(scope="module")
def clones():
    """Three informative genes, each with an identical clone, and noise genes."""
    rng = np.random.default_rng(1)
    n_cells = 2000
    programs = rng.normal(size=(n_cells, 3))
    log_rates = [np.log(20.0) + 0.8 * programs[:, i] for i in range(3)]
    informative = rng.poisson(np.exp(np.stack(log_rates, axis=1)))
    noise = rng.poisson(20.0, size=(n_cells, 14))
    counts = np.hstack([informative, informative, noise]).astype(np.float32)
    names = [f"signal{i}" for i in range(3)] + [f"clone{i}" for i in range(3)]
    names += [f"noise{i}" for i in range(14)]
    adata = AnnData(X=counts)
    adata.var_names = names
    return adata


def test_greedy_skips_genes_redundant_with_the_panel(clones):
    panel = select_panel(clones, 3, n_components=3)
    assert sorted(p[-1] for p in panel) == ["0", "1", "2"]
    assert not any(g.startswith("noise") for g in panel)


def test_must_include_comes_first_and_exclude_is_respected(clones):
    panel = select_panel(clones, 4, must_include=["noise3"], exclude=["signal0", "clone0"])
    assert panel[0] == "noise3" and len(panel) == len(set(panel)) == 4
    assert not {"signal0", "clone0"} & set(panel)
    ranked = select_panel(clones, 5, strategy="mean_expression", must_include=["noise3"])
    assert ranked[0] == "noise3"


def test_rankings_match_mean_expression_and_scanpy_hvg(clones, masked_model):
    panel = select_panel(clones, 6, strategy="mean_expression")
    means = np.asarray(clones.X.mean(0)).ravel()
    assert panel == list(clones.var_names[np.argsort(-means, kind="stable")[:6]])
    adata = masked_model.adata
    hvg = select_panel(adata, 10, strategy="hvg", layer="counts")
    reference = sc.pp.highly_variable_genes(
        adata.copy(), flavor="seurat_v3", layer="counts", n_top_genes=10, inplace=False
    )
    assert set(hvg) == set(adata.var_names[reference["highly_variable"].to_numpy()])


def test_greedy_with_a_model_embeds_its_latent_factors(masked_model):
    adata = masked_model.adata
    panel = select_panel(adata, 10, model=masked_model, layer="counts")
    longer = select_panel(adata, 20, model=masked_model, layer="counts")
    assert longer[:10] == panel and set(panel) <= set(adata.var_names)


def test_bad_requests_say_what_to_fix(clones, masked_model):
    with pytest.raises(ValueError, match="strategy"):
        select_panel(clones, 3, strategy="random")
    with pytest.raises(ValueError, match="n_genes"):
        select_panel(clones, 30)
    with pytest.raises(ValueError, match="n_genes"):
        select_panel(clones, 1, must_include=["noise1", "noise2"])
    with pytest.raises(ValueError, match="both in must_include and exclude"):
        select_panel(clones, 3, must_include=["noise1"], exclude=["noise1"])
    with pytest.raises(ValueError, match="not in adata.var_names"):
        select_panel(clones, 3, exclude=["GAPDH"])
    with pytest.raises(ValueError, match="other genes"):
        select_panel(clones, 3, model=masked_model)
