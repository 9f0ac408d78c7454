"""The permutation test of ExplainedVariance: the plain loop against the vectorized one.

Both get the same residuals, effects and permutations: 2,000 cells x 250 genes x 1,600
permutations by default, for effects from none to strong (so p-values span their range).
The plain loop is the published one: numpy, batches of 32 permutations, each computing the
full permuted MSE. Ours computes only the cross term that changes with the permutation, with
one gather per permutation (lucidvi.interpretation._spatial._permutation.permutation_p_value). The
script checks that the p-values are identical and prints median times over repeats.

    python benchmarks/permutation_test.py [--n-cells 2000] [--n-genes 250]
        [--n-permutations 1600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lucidvi.interpretation._spatial._permutation import permutation_p_value, random_permutations

_BATCH = 32
_TIE_TOLERANCE = 1e-9  # the same relative tolerance as lucidvi's test: equal MSEs are ties


def plain_p_value(residual: np.ndarray, effect: np.ndarray, permutations: np.ndarray) -> float:
    """Permuted MSEs computed in full, in batches of 32 permutations."""
    observed = np.mean((residual - effect) ** 2)
    scale = np.sqrt(np.sum(residual**2) * np.sum(effect**2)) * 2 / residual.size
    n_better = 0
    for start in range(0, len(permutations), _BATCH):
        batch = permutations[start : start + _BATCH]
        permuted = np.mean((residual[None] - effect[batch]) ** 2, axis=(1, 2))
        n_better += int(np.count_nonzero(permuted <= observed + _TIE_TOLERANCE * scale))
    return (1 + n_better) / (1 + len(permutations))


def _problems(n_cells: int, n_genes: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Residual and effect pairs with a planted share of the effect in the residual."""
    rng = np.random.default_rng(seed)
    problems = []
    for strength in (0.0, 0.0, 0.01, 0.02, 0.05, 0.2):
        effect = rng.normal(size=(n_cells, 1)) * rng.normal(size=(1, n_genes))
        residual = strength * effect + rng.normal(size=(n_cells, n_genes))
        problems.append((f"effect share {strength:.2f}", residual, effect))
    constant = np.tile(rng.normal(size=(1, n_genes)), (n_cells, 1))
    problems.append(("constant effect", rng.normal(size=(n_cells, n_genes)), constant))
    return problems


def _median_seconds(function, repeats: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=2000)
    parser.add_argument("--n-genes", type=int, default=250)
    parser.add_argument("--n-permutations", type=int, default=1600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    permutations = random_permutations(args.n_cells, args.n_permutations, args.seed)
    print(
        f"{args.n_cells} cells x {args.n_genes} genes x {args.n_permutations} permutations, "
        f"median of {args.repeats} runs"
    )
    print(f"{'problem':<20} {'p plain':>9} {'p ours':>9} {'plain s':>9} {'ours s':>8} {'ratio':>7}")
    ratios = []
    for name, residual, effect in _problems(args.n_cells, args.n_genes, args.seed):
        plain_s, plain = _median_seconds(
            lambda r=residual, e=effect: plain_p_value(r, e, permutations), args.repeats
        )
        ours_s, ours = _median_seconds(
            lambda r=residual, e=effect: permutation_p_value(r, e, permutations), args.repeats
        )
        if plain != ours:
            raise AssertionError(f"{name}: p-values differ, plain {plain} vs ours {ours}.")
        ratios.append(plain_s / ours_s)
        print(
            f"{name:<20} {plain:>9.5f} {ours:>9.5f} {plain_s:>9.3f} {ours_s:>8.3f} "
            f"{plain_s / ours_s:>6.1f}x"
        )
    print(f"identical p-values; median speed-up {np.median(ratios):.1f}x")


if __name__ == "__main__":
    main()
