"""What every interpretation result shares: a tidy table, saving and loading, W&B logging."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.axes import Axes

_METADATA_KEY = "lucidvi"
_CSV_PREFIX = "# lucidvi "


class TableResult(ABC):
    """Mixin for frozen result dataclasses whose whole content is one tidy table plus parameters.

    A subclass implements :meth:`to_dataframe`, ``_parameters()`` (JSON-serialisable scalars
    needed to rebuild it), ``_from_table(table, parameters)`` and ``_figures()`` (the plots
    logged to W&B). Saving writes the table and the parameters to one file, so nothing is lost
    when the file is moved: Parquet keeps them in the file's schema metadata, CSV in a first
    comment line.
    """

    _wandb_max_rows: ClassVar[int] = 200_000
    _text_columns: ClassVar[tuple[str, ...]] = ()  # read back from CSV as text, never as numbers

    @abstractmethod
    def to_dataframe(self) -> pd.DataFrame:
        """Return the result as a tidy long table."""

    def _parameters(self) -> dict[str, Any]:
        return {}

    @classmethod
    @abstractmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]):
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
    def load(cls, path: str | os.PathLike):
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

        from lucidvi.logging import _require_wandb

        wandb = _require_wandb()

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
