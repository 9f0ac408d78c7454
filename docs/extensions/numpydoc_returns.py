"""Render numpydoc ``Returns`` sections written as prose, as scverse packages do.

lucidvi's docstrings write ``Returns`` either as prose (``Tensor of shape (n_cells,).``,
the type coming from the annotation) or as numpydoc entries (``AnnData`` or ``name : type``
followed by an indented description). Napoleon reads prose as a type; here prose becomes the
``:returns:`` field as written (sphinx-autodoc-typehints then adds the annotated type), and
entries are left to napoleon.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.ext.napoleon import NumpyDocstring

_napoleon_parse_returns_section = NumpyDocstring._parse_returns_section


def _is_entry(first: object, second: object) -> bool:
    """Whether ``first`` is an unindented line followed by the indented ``second``."""
    return (
        isinstance(first, str)
        and isinstance(second, str)
        and bool(first.strip())
        and not first[0].isspace()
        and second[:1].isspace()
    )


def _parse_returns_section(self: NumpyDocstring, section: str) -> list[str]:
    if self._lines.get(0) == ":":  # put there by sphinx-autodoc-typehints
        self._lines.popleft()
    if _is_entry(self._lines.get(0), self._lines.get(1)):
        return _napoleon_parse_returns_section(self, section)
    lines = self._format_block(":returns: ", self._dedent(self._consume_to_next_section()))
    if lines and lines[-1]:
        lines.append("")
    return lines


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the extension."""
    NumpyDocstring._parse_returns_section = _parse_returns_section
    return {"parallel_read_safe": True, "parallel_write_safe": True}
