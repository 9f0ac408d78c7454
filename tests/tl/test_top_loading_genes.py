"""The genes that load most on each factor."""

import pandas as pd
import pytest

from lucidvi.tl import top_loading_genes


def _loadings():
    values = {"Z_0": [3.0, -2.0, 1.0, 0.5, -0.1], "Z_1": [0.0, 1.0, -5.0, 2.0, -3.0]}
    return pd.DataFrame(values, index=["a", "b", "c", "d", "e"])


def test_each_factor_lists_its_most_positive_and_most_negative_genes():
    top = top_loading_genes(_loadings(), n_top=2)
    assert list(top.columns) == ["factor", "direction", "rank", "gene", "loading"]
    by_list = top.groupby(["factor", "direction"], sort=False)["gene"].apply(list)
    assert by_list.to_dict() == {
        ("Z_0", "+"): ["a", "c"],
        ("Z_0", "-"): ["b", "e"],
        ("Z_1", "+"): ["d", "b"],
        ("Z_1", "-"): ["c", "e"],
    }
    assert top["rank"].tolist() == [1, 2] * 4
    assert top.loc[0, "loading"] == 3.0


def test_n_top_must_be_positive():
    with pytest.raises(ValueError, match="n_top"):
        top_loading_genes(_loadings(), n_top=0)
