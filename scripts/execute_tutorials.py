"""Execute the tutorial notebooks in place, keeping their outputs (run before a release).

Usage: ``python scripts/execute_tutorials.py [tutorials/NAME.ipynb ...]`` (all notebooks in
``tutorials/`` by default). Needs the ``doc`` extra (``pip install -e ".[doc]"``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat


def main(paths: list[str]) -> None:
    notebooks = [Path(p) for p in paths] or sorted(Path("tutorials").glob("*.ipynb"))
    for path in notebooks:
        print(f"executing {path}", flush=True)
        notebook = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            notebook,
            timeout=1800,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        nbformat.write(notebook, path)


if __name__ == "__main__":
    main(sys.argv[1:])
