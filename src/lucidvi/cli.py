"""The ``lucidvi`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lucidvi`` command.

    Parameters
    ----------
    argv
        Arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="lucidvi", description="Interpretable probabilistic models of single-cell omics."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train LinearVI on bundled PBMC data and write figures and a report",
        description="Train LinearVI on the bundled PBMC 68k subset; write the latent UMAP, top "
        "genes per factor, a loadings heatmap, the model and report.md into --out.",
    )
    demo.add_argument("--out", default="lucidvi_demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="fewer epochs: a one-minute smoke run")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        import matplotlib

        matplotlib.use("Agg")  # the command writes figures to files, with or without a display
        from lucidvi._demo import run_demo

        run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
