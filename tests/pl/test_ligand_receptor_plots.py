import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lucidvi.interpretation import LigandReceptorPairs
from lucidvi.pl import ligand_receptor_dotplot

matplotlib.use("Agg")


def _result(receivers=("CD14+ Mono",), n_pairs=6) -> LigandReceptorPairs:
    """A result with ``n_pairs`` ranked pairs per receiver, the first two significant."""
    frames = []
    for receiver in receivers:
        p_value = np.linspace(0.001, 0.9, n_pairs)
        frames.append(
            pd.DataFrame(
                {
                    "sender_type": "NK",
                    "receiver_type": receiver,
                    "ligand": [f"L{i}" for i in range(n_pairs)],
                    "receptor": [f"R{i}" for i in range(n_pairs)],
                    "interaction_type": "Secreted Signaling",
                    "ligand_fraction": 0.5,
                    "receptor_fraction": 0.4,
                    "n_targets": np.arange(n_pairs)[::-1] * 10,
                    "head": 0,
                    "receptor_score": 0.0,
                    "target_score": np.linspace(1.0, -0.5, n_pairs),
                    "score": np.linspace(1.0, -0.5, n_pairs),
                    "p_value": p_value,
                    "q_value": np.minimum(p_value * 3, 1.0),
                    "significant": np.arange(n_pairs) < 2,
                    "rank": np.arange(1, n_pairs + 1),
                    "top_genes": "A;B",
                }
            )
        )
    return LigandReceptorPairs(
        table=pd.concat(frames, ignore_index=True),
        resource="cellphonedb (human)",
        targets="hallmark",
        alternative="greater",
        alpha=0.05,
        n_permutations=999,
        seed=0,
        cells="240 held-out cells (not trained on)",
    )


def _labels_top_down(ax) -> list[str]:
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    return [label.get_text() for _, label in ticks]


def test_dotplot_draws_the_best_pairs_on_top_with_their_scores():
    result = _result()
    ax = ligand_receptor_dotplot(result, n_top=4)
    assert _labels_top_down(ax) == ["L0 -> R0", "L1 -> R1", "L2 -> R2", "L3 -> R3"]
    (points,) = ax.collections
    offsets = points.get_offsets()
    top = result.table.iloc[:4]
    np.testing.assert_allclose(offsets[:, 0], top["score"])  # x: the score
    assert (np.diff(offsets[:, 1]) < 0).all()  # rank 1 highest
    np.testing.assert_allclose(points.get_array(), -np.log10(top["p_value"]))  # colour
    sizes = points.get_sizes()
    assert (np.diff(sizes) < 0).all()  # more targets, larger dots
    edges = points.get_edgecolors()
    assert edges.shape[0] == 4 and (edges[:2, 3] == 1).all() and (edges[2:, 3] == 0).all()
    assert "NK -> CD14+ Mono" in ax.get_title() and "cellphonedb" in ax.get_title()
    plt.close(ax.figure)


def test_dotplot_names_the_cell_types_when_it_shows_several_and_draws_into_given_axes():
    result = _result(receivers=("CD14+ Mono", "B"))
    _, ax = plt.subplots()
    assert ligand_receptor_dotplot(result, n_top=2, ax=ax) is ax
    assert _labels_top_down(ax) == [
        "L0 -> R0  (NK -> CD14+ Mono)",
        "L1 -> R1  (NK -> CD14+ Mono)",
        "L0 -> R0  (NK -> B)",
        "L1 -> R1  (NK -> B)",
    ]
    only_b = ligand_receptor_dotplot(result, n_top=3, receiver_type="B")
    assert _labels_top_down(only_b) == ["L0 -> R0", "L1 -> R1", "L2 -> R2"]
    assert "NK -> B" in only_b.get_title()
    nothing = ligand_receptor_dotplot(result, sender_type="T")
    assert nothing.texts[0].get_text() == "no pair"
    plt.close("all")


def test_result_checks_its_table():
    result = _result()
    with pytest.raises(ValueError, match="columns"):
        LigandReceptorPairs(**{**_fields(result), "table": result.table.drop(columns="rank")})
    bad = result.table.assign(q_value=result.table["p_value"] / 2)
    with pytest.raises(ValueError, match="p_value <= q_value"):
        LigandReceptorPairs(**{**_fields(result), "table": bad})
    assert len(result.top(2)) == 2 and len(result.top(2, receiver_type="B")) == 0


def _fields(result: LigandReceptorPairs) -> dict:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}
