import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

import lucidvi
from lucidvi.interpretation import GeneProgramEnrichment
from lucidvi.pl import enrichment_bars, enrichment_diverging

matplotlib.use("Agg")

UP, DOWN = "HALLMARK_E2F_TARGETS", "HALLMARK_INTERFERON_GAMMA_RESPONSE"


@pytest.fixture(scope="module")
def result():
    """Two lists planted in different Hallmark sets, like a factor's + and - genes."""
    sets = lucidvi.data.gene_sets("hallmark")
    rng = np.random.default_rng(0)
    lists = {
        "Z_0+": list(rng.choice(sets[UP], 25, replace=False)),
        "Z_0-": list(rng.choice(sets[DOWN], 25, replace=False)),
    }
    return GeneProgramEnrichment.compute(lists, sets)


def _labels_bottom_up(ax):
    ticks = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    return [label.get_text() for _, label in sorted(ticks, key=lambda tick: tick[0])]


def _bars(ax):
    return [patch for patch in ax.patches if isinstance(patch, Rectangle)]


def test_bars_show_the_top_terms_most_significant_first(result):
    ax = enrichment_bars(result, list_name="Z_0+", n_top=5)
    top = result.top("Z_0+", 5)
    bars = _bars(ax)
    assert len(bars) == 5
    labels = _labels_bottom_up(ax)
    assert labels == list(top["term"][::-1])  # y grows upwards: most significant on top
    by_height = sorted(bars, key=lambda bar: bar.get_y(), reverse=True)
    np.testing.assert_allclose(
        [bar.get_width() for bar in by_height], -np.log10(top["p_value_adj"]), rtol=1e-12
    )
    assert labels[-1] == UP
    assert ax.get_xlabel() == "-log10 adjusted p"
    assert "Z_0+" in ax.get_title()
    plt.close(ax.figure)


def test_bars_draw_into_given_axes_and_need_a_list_name(result):
    fig, ax = plt.subplots()
    assert enrichment_bars(result, list_name="Z_0-", n_top=3, ax=ax) is ax
    assert len(_bars(ax)) == 3
    with pytest.raises(ValueError, match="pass list_name"):
        enrichment_bars(result)
    with pytest.raises(ValueError, match="Unknown list"):
        enrichment_bars(result, list_name="Z_9+")
    plt.close(fig)


def test_bars_of_a_single_or_empty_list():
    sets = {"A": ["a0", "a1", "a2"], "B": ["b0", "b1"]}
    with pytest.warns(UserWarning):
        res = GeneProgramEnrichment.compute({"only": ["a0", "a1"], "empty": ["zz"]}, sets)
    single = GeneProgramEnrichment(
        res.table, res.gene_sets_name, ("only",), {"only": res.n_tested["only"]}
    )
    ax = single.plot_bars()
    assert len(_bars(ax)) == 1 and ax.get_yticklabels()[0].get_text() == "A"
    plt.close(ax.figure)
    ax = res.plot_bars(list_name="empty")
    assert len(_bars(ax)) == 0
    assert any("no term" in text.get_text() for text in ax.texts)
    plt.close(ax.figure)


def test_diverging_puts_group_a_right_and_group_b_left(result):
    n_top = 4
    ax = enrichment_diverging(result, group_a="Z_0+", group_b="Z_0-", n_top=n_top)
    top_a, top_b = result.top("Z_0+", n_top), result.top("Z_0-", n_top)
    terms = set(top_a["term"]) | set(top_b["term"])
    labels = _labels_bottom_up(ax)
    assert set(labels) == terms
    assert labels[-1] == UP and labels[0] == DOWN  # top row: most Z_0+-specific
    table = result.table[result.table["term"].isin(terms)]
    bars = _bars(ax)
    assert len(bars) == len(table)  # one bar per (term, list) with a row
    widths = {}
    for bar in bars:
        term = labels[round(bar.get_y() + bar.get_height() / 2)]
        widths.setdefault(term, []).append(bar.get_width())
    for row in table.itertuples():
        sign = 1.0 if row.list == "Z_0+" else -1.0
        assert any(
            np.isclose(width, sign * -np.log10(row.p_value_adj), rtol=1e-12)
            for width in widths[row.term]
        )
    assert max(widths[UP]) > 0 and min(widths[DOWN]) < 0
    assert len(ax.figure.axes) == 2  # the colour bar
    assert ax.figure.axes[1].get_ylabel() == "gene ratio"
    plt.close(ax.figure)


def test_diverging_colours_follow_gene_ratio(result):
    ax = result.plot_diverging(group_a="Z_0+", group_b="Z_0-", n_top=3)
    bars = _bars(ax)
    top = max(bars, key=lambda bar: bar.get_width())
    colorbar = ax.figure.axes[1]
    # the planted term has the largest gene ratio: the top colour of the map
    assert colorbar.get_ylim()[1] == pytest.approx(result.table["gene_ratio"].max())
    assert np.allclose(top.get_facecolor(), plt.get_cmap("viridis")(1.0))
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="differ"):
        enrichment_diverging(result, group_a="Z_0+", group_b="Z_0+")
