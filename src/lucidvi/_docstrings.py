"""Parameter text shared by several public signatures, substituted by docrep (as in scvi-tools).

A docstring decorated with ``@lucidvi_dsp.dedent`` is dedented, then every ``%(name)s`` in it is
replaced by the entry ``name`` below (so a literal percent sign must be written ``%%`` there).
Each entry is one numpydoc parameter: its name line, then its description indented by 4 spaces;
the placeholder stands at the indentation of the docstring's other parameter names.
"""

from __future__ import annotations

from docrep import DocstringProcessor

# ------------------------------------------------------------------- models (lucidvi.model)
_MODEL_PARAMETERS: dict[str, str] = {}

# ------------------------------------------------- interpretation results (lucidvi.interpretation)
_RESULT_PARAMETERS: dict[str, str] = {}

lucidvi_dsp = DocstringProcessor(**_MODEL_PARAMETERS, **_RESULT_PARAMETERS)
