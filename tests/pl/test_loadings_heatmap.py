import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lucidvi.pl import loadings_heatmap
from lucidvi.tl import top_loading_genes

matplotlib.use("Agg")


def test_heatmap_rows_are_the_top_loading_genes_each_once():
    rng = np.random.default_rng(0)
    loadings = pd.DataFrame(
        rng.normal(size=(30, 3)), index=[f"g{i}" for i in range(30)], columns=["Z_0", "Z_1", "Z_2"]
    )
    fig, ax = plt.subplots()
    assert loadings_heatmap(loadings, n_top=4, ax=ax, cmap="PuOr") is ax
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == list(dict.fromkeys(top_loading_genes(loadings, n_top=4)["gene"]))
    assert ax.images[0].get_cmap().name == "PuOr"
    assert ax.get_title() == "Top 4 +/- genes per factor"
    plt.close("all")
