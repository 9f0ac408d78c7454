import matplotlib
import numpy as np
import pandas as pd
import pytest

from lucidvi.interpretation import PanelInformation
from lucidvi.pl import panel_information

matplotlib.use("Agg")


def _result(knn):
    table = pd.DataFrame({
        "panel": ["a 10", "a 20", "given"], "group": ["a", "a", "given"],
        "n_genes": [10, 20, 15], "mutual_information": [1.0, 1.5, 1.2],
        "ci_low": [0.9, 1.4, 1.1], "ci_high": [1.1, 1.6, 1.3], "upper_bound": [np.nan] * 3,
        "knn_accuracy": [0.7, 0.8, 0.75] if knn else [np.nan] * 3, "genes": ["x", "x;y", "y"],
    })  # fmt: skip
    return PanelInformation(table, "gaussian", "masked", 100, 0.9 if knn else np.nan)


def test_lines_per_group_with_intervals_and_the_ceiling():
    fig, ax = matplotlib.pyplot.subplots()
    assert panel_information(_result(True), ax=ax) is ax
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "given"]
    ax = panel_information(_result(True), metric="knn_accuracy")
    assert ax.get_ylabel() == "kNN cell-type accuracy"
    assert any(np.allclose(line.get_ydata(), 0.9) for line in ax.get_lines())
    matplotlib.pyplot.close("all")


def test_missing_metric_raises():
    with pytest.raises(ValueError, match="labels_key"):
        panel_information(_result(False), metric="knn_accuracy")
    with pytest.raises(ValueError, match="metric"):
        panel_information(_result(True), metric="auc")
