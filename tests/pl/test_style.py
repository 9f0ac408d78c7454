import matplotlib
import matplotlib.pyplot as plt

from lucidvi.pl._style import plot_style


def test_style_is_scoped_but_interactive_mode_reached_inside_is_kept():
    before_size, before_interactive = plt.rcParams["font.size"], matplotlib.is_interactive()
    try:
        with plot_style({"font.size": 3}):
            assert plt.rcParams["font.size"] == 3
            matplotlib.interactive(True)  # what loading Jupyter's inline backend does
        assert plt.rcParams["font.size"] == before_size
        assert matplotlib.is_interactive()
    finally:
        matplotlib.interactive(before_interactive)
