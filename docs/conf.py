"""Sphinx configuration of the lucidvi documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``. The build is
offline: cross-links to other projects' docs (intersphinx) are on only with
``LUCIDVI_DOCS_INTERSPHINX=1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from datetime import date
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "extensions"))
# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates; not ours to fix.
warnings.filterwarnings(
    "ignore", message=r".*_RstSnippetParser\.set_application", category=DeprecationWarning
)

# -- Project ---------------------------------------------------------------------------------

project = "lucidvi"
author = "The lucidvi developers"
copyright = f"{date.today().year}, {author}"
release = _version("lucidvi")
version = ".".join(release.split(".")[:2])

# -- General ---------------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxcontrib.bibtex",
    "numpydoc_returns",  # local, in extensions/
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "extensions", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
master_doc = "index"
default_role = "literal"

# -- Autodoc, autosummary, napoleon, typehints ------------------------------------------------

autosummary_generate = True
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False
typehints_defaults = "comma"
typehints_document_rtype = True
typehints_use_rtype = False  # the annotated type goes into the Returns field
always_use_bars_union = True

# Methods inherited from scvi-tools that a model's page documents next to the model's own
# ones (read by _templates/autosummary/class.rst); other inherited members are left out.
_MODEL_METHODS = [
    "train",
    "get_latent_representation",
    "get_normalized_expression",
    "differential_expression",
    "get_elbo",
    "get_reconstruction_error",
    "get_marginal_ll",
    "save",
    "load",
    "setup_anndata",
]
# InteractionVI's and MixtureVI's outputs come from their mixins (model/_interaction/,
# model/_mixture/)
_INTERACTION_OUTPUTS = [
    "get_predictions",
    "get_attention",
    "get_niche_embedding",
    "get_log_likelihood",
]
_MIXTURE_OUTPUTS = [
    "get_cluster_probabilities",
    "get_cluster_assignments",
    "get_log_likelihood",
    "get_cluster_parameters",
    "get_marker_genes",
    "plot_cluster_expression",
    "select_n_clusters",
]
_SAVE_LOAD = ["save", "load"]
autosummary_context = {
    "inherited_shown": {
        "lucidvi.model.LinearVI": _MODEL_METHODS,
        "lucidvi.model.InteractionVI": _INTERACTION_OUTPUTS + _SAVE_LOAD,
        "lucidvi.model.MixtureVI": _MIXTURE_OUTPUTS + _SAVE_LOAD,
    }
}

# -- Citations -------------------------------------------------------------------------------

bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"

# -- MyST and notebooks ----------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # tutorials are executed before they are committed, outputs kept


def _copy_tutorials() -> None:
    """Copy the notebooks of the repository's ``tutorials/`` into ``docs/tutorials/``.

    Sphinx only reads sources inside ``docs/``; the copy is git-ignored. ``copy2`` keeps the
    modification times, so incremental builds re-read only notebooks that changed.
    """
    src, dst = HERE.parent / "tutorials", HERE / "tutorials"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    for notebook in sorted(src.glob("*.ipynb")):
        shutil.copy2(notebook, dst / notebook.name)


_copy_tutorials()

# -- Intersphinx (needs internet; off by default) --------------------------------------------

if os.environ.get("LUCIDVI_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
    }

# -- HTML ------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"lucidvi {version}"
html_static_path: list[str] = []
