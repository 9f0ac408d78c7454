"""What every interpretation result shares: checked fields, a tidy table, files, W&B logging."""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import numpy as np
import pandas as pd

# Axes at run time, not only for type checkers: the plot methods made by plot_method live in
# this module's namespace, where documentation tools resolve their annotations
from matplotlib.axes import Axes

from lucidvi.logging import require_wandb

if TYPE_CHECKING:
    from collections.abc import Iterator

_METADATA_KEY = "lucidvi"  # key of the header (type and parameters) in a Parquet schema
_CSV_PREFIX = "# lucidvi "  # first line of a CSV file: this prefix, then the JSON header


class TableResult(ABC):
    """Base of the frozen result dataclasses: one tidy table plus parameters.

    A subclass is a ``@dataclass(frozen=True, eq=False)`` with a ``compute()`` class method. It
    implements :meth:`to_dataframe`, ``_parameters()`` (JSON-serialisable scalars needed to
    rebuild it), ``_from_table(table, parameters)``, ``_figures()`` (the plots logged to W&B)
    and, for checks of its own, ``_validate()``. Saving writes the table and the parameters to
    one file, so nothing is lost when the file is moved: Parquet keeps them in the file's
    schema metadata, CSV in a first comment line.

    Validation runs once, in ``__post_init__``: every field's value is checked against the
    field's annotation (resolved with :func:`typing.get_type_hints`; ``pd.DataFrame``,
    ``float``, ``int | None``, ``tuple[str, ...]``, ``dict[str, int]``, ``Literal[...]`` and
    their unions), raising :class:`TypeError` for a value of the wrong type and
    :class:`ValueError` for a string outside a ``Literal``; then ``_validate()`` checks what
    the types cannot say (columns, shapes, ranges).
    """

    # the most rows W&B logs in a table (wandb.Table.MAX_ARTIFACT_ROWS)
    _wandb_max_rows: ClassVar[int] = 200_000
    _text_columns: ClassVar[tuple[str, ...]] = ()  # read back from CSV as text, never as numbers

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():  # name the methods made by plot_method
            if getattr(value, "_draws_with", None) is not None:
                value.__name__, value.__qualname__ = name, f"{cls.__qualname__}.{name}"
                value.__module__ = cls.__module__  # where documentation tools look the class up

    def __post_init__(self) -> None:
        name = type(self).__name__
        hints = _field_types(type(self))
        for field in dataclasses.fields(self):
            _check_type(f"{name}.{field.name}", getattr(self, field.name), hints[field.name])
        self._validate()

    def _validate(self) -> None:  # noqa: B027 (a hook: no check of its own by default)
        """Check what the field types cannot say; raise ValueError (nothing by default)."""

    @abstractmethod
    def to_dataframe(self) -> pd.DataFrame:
        """Return the result as a tidy long table."""

    def _parameters(self) -> dict[str, Any]:
        return {}

    @classmethod
    @abstractmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> TableResult:
        """Rebuild the result from :meth:`to_dataframe`'s table and :meth:`_parameters`."""

    @abstractmethod
    def _figures(self) -> Iterator[tuple[str, Axes]]:
        """Yield ``(name, Axes)`` for each plot logged by :meth:`log_to_wandb`."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to a ``.parquet`` or ``.csv`` file.

        Parameters
        ----------
        path
            Destination; the suffix picks the format.

        Returns
        -------
        The path written.
        """
        path = Path(path)
        header = {"type": type(self).__name__, "parameters": self._parameters()}
        table = self.to_dataframe()
        if path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(table, preserve_index=False)
            metadata = dict(arrow.schema.metadata or {})
            metadata[_METADATA_KEY.encode()] = json.dumps(header).encode()
            pq.write_table(arrow.replace_schema_metadata(metadata), path)
        elif path.suffix == ".csv":
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(_CSV_PREFIX + json.dumps(header) + "\n")
                table.to_csv(handle, index=False)
        else:
            raise ValueError(f"Cannot save to {path.name!r}: use a .parquet or .csv file name.")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TableResult:
        """Read a result written by :meth:`save`.

        Parameters
        ----------
        path
            A ``.parquet`` or ``.csv`` file.

        Returns
        -------
        The result, equal to the one saved.
        """
        path = Path(path)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            arrow = pq.read_table(path)
            raw = (arrow.schema.metadata or {}).get(_METADATA_KEY.encode())
            header = json.loads(raw) if raw is not None else None
            table = arrow.to_pandas()
        elif path.suffix == ".csv":
            with open(path, encoding="utf-8") as handle:
                first = handle.readline()
                header = (
                    json.loads(first[len(_CSV_PREFIX) :]) if first.startswith(_CSV_PREFIX) else None
                )
                table = pd.read_csv(
                    handle,
                    keep_default_na=False,
                    na_values=[""],
                    dtype={column: str for column in cls._text_columns},
                )
        else:
            raise ValueError(f"Cannot load {path.name!r}: expected a .parquet or .csv file.")
        if header is None or header.get("type") != cls.__name__:
            found = "no lucidvi result" if header is None else f"a {header.get('type')}"
            raise ValueError(f"{path} holds {found}, not a {cls.__name__}.")
        return cls._from_table(table, header["parameters"])

    def log_to_wandb(self, run: Any = None, key: str | None = None) -> None:
        """Log the table and the plots of this result to a Weights & Biases run.

        Parameters
        ----------
        run
            A ``wandb`` run (default: the active ``wandb.run``; works in offline mode).
        key
            Prefix of the logged keys (default: the class name), e.g. ``"GeneLoadings/table"``.

        Raises
        ------
        ImportError
            If wandb is not installed (``pip install 'lucidvi[wandb]'``).
        RuntimeError
            If no run is given and none is active.
        """
        import matplotlib.pyplot as plt

        wandb = require_wandb()

        run = run if run is not None else wandb.run
        if run is None:
            raise RuntimeError("No active W&B run: start one with wandb.init(...) or pass run=.")
        key = key or type(self).__name__
        table = self.to_dataframe()
        if len(table) > self._wandb_max_rows:
            raise ValueError(
                f"The table has {len(table)} rows, more than W&B tables take "
                f"({self._wandb_max_rows}); log a subset with wandb.Table yourself."
            )
        table = table.apply(lambda c: c.astype(str) if c.dtype == object else c)
        payload: dict[str, Any] = {f"{key}/table": wandb.Table(dataframe=table)}
        for name, ax in self._figures():
            payload[f"{key}/{name}"] = wandb.Image(ax.figure)
            plt.close(ax.figure)
        run.log(payload)


_PLOT_DOCSTRING = """{summary}

Drawn by :func:`lucidvi.pl.{function}`, whose parameters it takes{options}.

Parameters
----------
ax
    Axes to draw into (a new figure when ``None``).
**kwargs
    The other keyword arguments of :func:`lucidvi.pl.{function}`.

Returns
-------
The Axes.
"""


def plot_method(function: str, summary: str, options: str = "") -> Callable[..., Axes]:
    """Make a result's ``plot_<what>`` method: draw the result with one ``lucidvi.pl`` function.

    The method takes ``ax`` and the function's other keyword arguments and forwards them, so
    none is out of reach; its docstring names the function instead of repeating its
    parameters. Assign it in the class body, as ``plot_<what> = plot_method(...)``.

    Parameters
    ----------
    function
        Name of the function in :mod:`lucidvi.pl`; it takes the result first, then keywords.
    summary
        First line of the method's docstring.
    options
        The function's main options, shown after "whose parameters it takes", e.g.
        ``"(``n_top``)"``.

    Returns
    -------
    The method.
    """

    def plot(self: TableResult, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
        import lucidvi.pl

        return getattr(lucidvi.pl, function)(self, ax=ax, **kwargs)

    options = f" {options}" if options else ""
    plot.__doc__ = _PLOT_DOCSTRING.format(summary=summary, function=function, options=options)
    plot._draws_with = function
    return plot


@cache
def _field_types(cls: type) -> dict[str, Any]:
    """Resolve a result class's annotations (with its module's names, at run time)."""
    return get_type_hints(cls)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    """Raise TypeError if ``value`` does not fit ``annotation`` (ValueError: outside a Literal)."""
    if _fits(value, annotation):
        return
    options = [a for a in _union_members(annotation) if a is not type(None)]
    if isinstance(value, str) and options and all(get_origin(a) is Literal for a in options):
        choices = [choice for option in options for choice in get_args(option)]
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
    raise TypeError(f"{name} must be {_describe(annotation)}, got {type(value).__name__}.")


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is an instance of ``annotation``, looking into unions and containers."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if origin in (Union, types.UnionType):
        return any(_fits(value, member) for member in args)
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if annotation is bool:
        return isinstance(value, bool | np.bool_)
    if annotation is int:  # numpy integers too, never a bool
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if annotation is float:  # an int is a float too (as for type checkers), never a bool
        return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(item, args[0]) for item in value)
        return not args or (len(value) == len(args) and all(map(_fits, value, args)))
    if origin in (list, set, frozenset):
        item = args[0] if args else Any
        return isinstance(value, origin) and all(_fits(element, item) for element in value)
    if origin in (dict, Mapping):
        key, item = args or (Any, Any)
        return isinstance(value, Mapping) and all(
            _fits(k, key) and _fits(v, item) for k, v in value.items()
        )
    return isinstance(value, origin or annotation)


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")
