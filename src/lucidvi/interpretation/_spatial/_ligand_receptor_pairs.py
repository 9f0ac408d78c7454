"""Which curated ligand-receptor pairs could carry an interaction the model finds."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import false_discovery_control

from lucidvi._docstrings import lucidvi_dsp

from .._result import TableResult, plot_method
from ._attention_patterns import AttentionPatterns
from ._gene_set_test import Alternative, expression_bins, matched_set_test
from ._inputs import (
    cell_types,
    chosen_types,
    evaluation_cells,
    neighbor_types,
    observed_expression,
)
from ._lr_candidates import (
    Organism,
    Targets,
    expressed_candidates,
    expressed_fractions,
    guess_organism,
    panel_symbols,
    resolve_pairs,
    resolve_targets,
)
from ._neighbor_ablation import NeighborAblation
from ._niche_contrast import niche_types
from ._pair_evidence import gene_evidence, head_programme, niche_head

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matplotlib.axes import Axes

    from lucidvi.model import InteractionVI

# the columns of the table, in order
_COLUMNS = [
    "sender_type",
    "receiver_type",
    "ligand",
    "receptor",
    "interaction_type",
    "ligand_fraction",
    "receptor_fraction",
    "n_targets",
    "head",
    "receptor_score",
    "target_score",
    "score",
    "p_value",
    "q_value",
    "significant",
    "rank",
    "top_genes",
]
_N_TOP_GENES = 5  # genes named in top_genes
_MIN_PERMUTATIONS = 1000


@dataclass(frozen=True, eq=False)
class LigandReceptorPairs(TableResult):
    """Curated ligand-receptor pairs ranked by the model's evidence for a sender -> receiver pair.

    Attributes
    ----------
    table
        One row per sender type, receiver type and ligand-receptor pair of the resource whose
        ligand the senders and receptor the receivers express: ``ligand`` and ``receptor``
        (complexes joined by ``_``), ``interaction_type``, ``ligand_fraction`` and
        ``receptor_fraction`` (share of the type's cells expressing the least expressed
        subunit), ``n_targets`` (known targets of the pair on the panel), ``head`` (the niche
        head the score read), ``receptor_score`` and ``target_score`` (mean evidence of the
        receptor's subunits and of the targets; NaN without targets), ``score`` (mean
        evidence of both together), ``p_value`` (against random gene sets of the same size and
        expression), ``q_value`` (Benjamini-Hochberg over the table), ``significant``
        (``q_value < alpha``), ``rank`` (within the sender and receiver type: by p-value,
        then score) and ``top_genes`` (the pair's genes with the most evidence, ``;``-joined).
    resource
        The resource's name, e.g. ``"cellphonedb (human)"`` (``"custom"`` for a table).
    targets
        ``"hallmark"``, ``"custom"`` or ``"none"``.
    alternative
        ``"greater"`` (up-regulation is evidence) or ``"two-sided"`` (any change).
    alpha
        Significance level of ``significant``.
    n_permutations
        Random gene sets per pair.
    seed
        Seed of the random gene sets.
    cells
        Which receivers the evidence was computed on.
    """

    _text_columns = (
        "sender_type",
        "receiver_type",
        "ligand",
        "receptor",
        "interaction_type",
        "top_genes",
    )

    table: pd.DataFrame
    resource: str
    targets: str
    alternative: Literal["greater", "two-sided"]
    alpha: float
    n_permutations: int
    seed: int | None
    cells: str

    def _validate(self) -> None:
        if list(self.table.columns) != _COLUMNS:
            raise ValueError(f"table must have the columns {_COLUMNS}.")
        p, q = self.table["p_value"].to_numpy(), self.table["q_value"].to_numpy()
        if np.any((p <= 0) | (p > 1) | (q < p * (1 - 1e-12)) | (q > 1)):
            raise ValueError("p-values must satisfy 0 < p_value <= q_value <= 1.")

    @classmethod
    @lucidvi_dsp.dedent
    def compute(
        cls,
        model: InteractionVI,
        *,
        sender_type: str | Sequence[str],
        receiver_type: str | Sequence[str],
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        resource: str | pd.DataFrame = "cellphonedb",
        organism: Organism | None = None,
        targets: Targets | None = "hallmark",
        gene_symbols: str | None = None,
        min_ligand_fraction: float = 0.1,
        min_receptor_fraction: float = 0.1,
        alternative: Alternative = "greater",
        n_bins: int = 10,
        n_permutations: int | None = None,
        alpha: float = 0.05,
        seed: int | None = 0,
        batch_size: int = 256,
    ) -> LigandReceptorPairs:
        r"""Rank the ligand-receptor pairs that could carry each sender -> receiver interaction.

        **Candidates.** The pairs of ``resource`` whose ligand (every subunit) at least
        ``min_ligand_fraction`` of the sender type's cells express (a positive value) and whose
        receptor (every subunit) at least ``min_receptor_fraction`` of the receiver type's
        cells express, counted over all cells of ``adata``. A pair's genes are its receptor's
        subunits and its known ``targets`` on the panel; the ligand's subunits are left out
        (a sender's transcripts that segmentation assigns to a receiver would otherwise count
        as its response).

        **Evidence per gene**, from the model, for the receivers of the evaluation cells:

        1. the pair's interaction genes: Welch's t statistic of the receivers the senders affect
           against the other receivers (:class:`NeighborAblation`, ``de_statistic``);
        2. the niche head's gene programme: of the heads, the one with the largest
           value-weighted attention from the receivers to the senders
           (:class:`AttentionPatterns`, ``weighted_effect``); per gene, the log2 fold change
           of the mean prediction of the receivers with a sender among their neighbours, that
           head alone, with the senders against without them (the difference for
           ``"gaussian"`` models).

        Each is turned into normal scores of its ranks over the panel's genes (signed values
        for ``alternative="greater"``, absolute ones for ``"two-sided"``), and a gene's
        evidence is their mean. A pair's ``score`` is the mean evidence of its genes.

        **Test.** The genes are split into ``n_bins`` bins of equal size by their mean
        expression in the receivers. A random set draws, for each of the pair's genes, a gene
        of its bin; ``p_value = (1 + #{random score >= score}) / (1 + n_permutations)``, and
        ``q_value`` adjusts the p-values of the whole table (Benjamini-Hochberg).

        Parameters
        ----------
        %(interaction_model)s
        sender_type
            Sender type(s).
        receiver_type
            Receiver type(s); every sender is paired with every receiver.
        %(interaction_adata)s
        %(interaction_indices)s
        resource
            ``"cellphonedb"`` (bundled, human or mouse), ``"liana:<name>"`` (with liana
            installed) or a DataFrame with ``ligand`` and ``receptor`` columns; see
            :func:`lucidvi.data.ligand_receptor_pairs`.
        organism
            ``"human"`` or ``"mouse"``: the bundled tables to use (CellPhoneDB and the
            ``"hallmark"`` targets). ``None``: the one whose genes the panel shares more of.
        targets
            Known targets of the receptors: ``"hallmark"`` (a curated map from receptors to
            MSigDB Hallmark response sets, :func:`lucidvi.data.receptor_targets`); a mapping
            from a receptor gene or complex (``"IFNGR1"``, ``"IFNGR1_IFNGR2"``) or a
            ``(ligand, receptor)`` tuple to target genes; a DataFrame with a ``target`` column
            and a ``receptor`` and/or ``ligand`` column (e.g. NicheNet's ligand-target links
            or a CollecTRI table mapped to receptors); or ``None`` (receptors only).
        gene_symbols
            Column of ``adata.var`` with the gene symbols (default: ``var_names``).
        min_ligand_fraction
            Share of the senders that must express every ligand subunit, in [0, 1].
        min_receptor_fraction
            Share of the receivers that must express every receptor subunit, in [0, 1].
        alternative
            ``"greater"``: genes count as evidence when the senders raise them (targets of a
            signalling pathway are mostly induced); ``"two-sided"``: when they change either
            way.
        n_bins
            Expression bins of the null sets (fewer when the panel has fewer genes).
        n_permutations
            Random gene sets per pair; when ``None``, ``ceil(n_pairs / alpha)`` and at least
            1,000, so the smallest possible p-value survives a Bonferroni correction over the
            table.
        %(alpha)s
            Here: of ``significant``.
        %(random_seed)s
        %(interaction_batch_size)s

        Returns
        -------
        The result.

        Raises
        ------
        ValueError
            For unknown cell types; a panel with no pair of the resource (e.g. Ensembl IDs
            instead of symbols: pass ``gene_symbols``); no receiver type with a niche that the
            senders affect (see :meth:`~lucidvi.model.InteractionVI.get_niche_calibration`);
            or no pair expressed at the fractions asked for.
        RuntimeError
            If the model is not trained.

        Warns
        -----
        UserWarning
            For the sender and receiver types left out (no niche, no cell affected).

        Notes
        -----
        The test is competitive: it asks whether the pair's genes respond more than random
        genes of the same expression, not whether they respond at all. Genes of one pathway
        are co-regulated, so a set's genes are not independent draws and the p-values are
        somewhat optimistic for large target sets; the ``rank`` orders the pairs regardless.
        A high-ranking pair is a candidate that the model's evidence supports, not a proof of
        signalling: ligands that share a receptor share its evidence, and pairs whose
        receptor has no known targets are judged by the receptor alone.

        Examples
        --------
        >>> res = LigandReceptorPairs.compute(model, sender_type="B", receiver_type="CD14+ Mono")
        >>> res.top(10)
        >>> res.plot_dotplot()
        """
        _check_options(min_ligand_fraction, min_receptor_fraction, alternative, n_bins, alpha)
        adata, cells, description = evaluation_cells(model, adata, indices)
        types = cell_types(model, adata, cells)
        senders = chosen_types(sender_type, model.labels, "sender_type")
        receivers = chosen_types(receiver_type, model.labels, "receiver_type")
        symbols = panel_symbols(adata, gene_symbols)
        if organism is None:  # needed by the bundled resource and targets only
            bundled = (isinstance(resource, str) and resource == "cellphonedb") or (
                isinstance(targets, str) and targets == "hallmark"
            )
            organism = guess_organism(symbols) if bundled else "human"
        pairs, resource_name = resolve_pairs(resource, organism, symbols)
        lookup, targets_name = resolve_targets(targets, organism)
        skipped = _receivers_without_niche(model, receivers, types, description)
        receivers = [r for r in receivers if not any(r == s for s, _ in skipped)]
        if not receivers:
            raise ValueError("No receiver type to read: " + "; ".join(r for _, r in skipped))
        ablation = NeighborAblation.compute(
            model, receivers, senders, adata, cells, alpha=alpha, batch_size=batch_size
        )
        exposed_to = neighbor_types(model, adata)
        heads = AttentionPatterns.compute(
            model, adata, cells[np.isin(types, receivers)], batch_size=batch_size
        ).table
        fractions = expressed_fractions(model, adata, list(dict.fromkeys(senders + receivers)))
        column = {}
        for j, symbol in enumerate(symbols):
            column.setdefault(symbol, j)
        jobs = []
        for receiver in receivers:
            rows = cells[types == receiver]
            bins = expression_bins(
                observed_expression(model, adata, rows).mean(axis=0), min(n_bins, len(symbols))
            )
            for sender in senders:
                contrast = ablation.table.query(
                    "receiver_type == @receiver and sender_type == @sender"
                )
                if not (contrast["n_affected"] > 0).any():
                    skipped.append(
                        (receiver, f"the model finds no {receiver!r} cell that {sender!r} affects")
                    )
                    continue
                exposed = rows[np.any(exposed_to[rows] == sender, axis=1)]
                head = niche_head(heads, receiver, sender)
                programme = head_programme(model, adata, exposed, head, sender, batch_size)
                evidence = gene_evidence(
                    contrast["de_statistic"].to_numpy(), programme, alternative
                )
                candidates = expressed_candidates(
                    pairs, lookup, column, fractions[sender], fractions[receiver],
                    min_ligand_fraction, min_receptor_fraction,
                )  # fmt: skip
                jobs.append((sender, receiver, head, evidence, bins, candidates))
        if not jobs:
            raise ValueError(
                "No sender -> receiver pair to read: " + "; ".join(r for _, r in skipped)
            )
        if skipped:
            reasons = "; ".join(reason for _, reason in skipped)
            warnings.warn(f"Left out: {reasons}.", UserWarning, stacklevel=2)
        n_pairs = sum(len(job[-1]) for job in jobs)
        if n_pairs == 0:
            raise ValueError(
                f"No pair of the {len(pairs)} on the panel has its ligand expressed by at least "
                f"{min_ligand_fraction:g} of the senders and its receptor by at least "
                f"{min_receptor_fraction:g} of the receivers; lower min_ligand_fraction or "
                "min_receptor_fraction."
            )
        if n_permutations is None:
            n_permutations = max(_MIN_PERMUTATIONS, math.ceil(n_pairs / alpha))
        seeds = (
            np.random.default_rng(seed).integers(2**63, size=len(jobs))
            if seed is not None
            else [None] * len(jobs)
        )
        frames = [
            _score(job, symbols, int(n_permutations), job_seed)
            for job, job_seed in zip(jobs, seeds, strict=True)
            if len(job[-1])
        ]
        table = pd.concat(frames, ignore_index=True)
        table["q_value"] = np.maximum(false_discovery_control(table["p_value"]), table["p_value"])
        table["significant"] = table["q_value"].to_numpy() < alpha
        return cls(
            table=table[_COLUMNS],
            resource=resource_name,
            targets=targets_name,
            alternative=alternative,
            alpha=float(alpha),
            n_permutations=int(n_permutations),
            seed=None if seed is None else int(seed),
            cells=description,
        )

    def top(
        self, n: int = 10, *, sender_type: str | None = None, receiver_type: str | None = None
    ) -> pd.DataFrame:
        """Return the ``n`` best-ranked pairs of each sender and receiver type (or of those given).

        Parameters
        ----------
        n
            Pairs per sender and receiver type.
        sender_type
            Only this sender type.
        receiver_type
            Only this receiver type.

        Returns
        -------
        Rows of :attr:`table`, by sender type, receiver type and rank.
        """
        rows = self.table[self.table["rank"] <= n]
        if sender_type is not None:
            rows = rows[rows["sender_type"] == sender_type]
        if receiver_type is not None:
            rows = rows[rows["receiver_type"] == receiver_type]
        return rows.reset_index(drop=True)

    def to_dataframe(self) -> pd.DataFrame:
        """Return the table (see :attr:`table`).

        Returns
        -------
        Columns ``sender_type``, ``receiver_type``, ``ligand``, ``receptor``,
        ``interaction_type``, ``ligand_fraction``, ``receptor_fraction``, ``n_targets``,
        ``head``, ``receptor_score``, ``target_score``, ``score``, ``p_value``, ``q_value``,
        ``significant``, ``rank``, ``top_genes``.
        """
        return self.table.copy()

    def _parameters(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "targets": self.targets,
            "alternative": self.alternative,
            "alpha": self.alpha,
            "n_permutations": self.n_permutations,
            "seed": self.seed,
            "cells": self.cells,
        }

    @classmethod
    def _from_table(cls, table: pd.DataFrame, parameters: dict[str, Any]) -> LigandReceptorPairs:
        for column in ("sender_type", "receiver_type", "ligand", "receptor", "top_genes"):
            table[column] = table[column].astype(str)
        table["interaction_type"] = [
            None if pd.isna(value) else str(value) for value in table["interaction_type"]
        ]
        table["significant"] = table["significant"].astype(bool)
        return cls(table=table[_COLUMNS], **parameters)

    plot_dotplot = plot_method(
        "ligand_receptor_dotplot",
        "Dot plot of the best-ranked pairs: score, p-value and number of genes.",
        options="(``n_top``, ``sender_type``, ``receiver_type``, ``cmap``)",
    )

    def _figures(self) -> Iterator[tuple[str, Axes]]:
        yield "dotplot", self.plot_dotplot()


def _check_options(
    min_ligand: float, min_receptor: float, alternative: str, n_bins: int, alpha: float
) -> None:
    for name, value in (
        ("min_ligand_fraction", min_ligand),
        ("min_receptor_fraction", min_receptor),
    ):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {value}.")
    if alternative not in ("greater", "two-sided"):
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}.")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")


def _receivers_without_niche(
    model: InteractionVI, receivers: list[str], types: np.ndarray, description: str
) -> list[tuple[str, str]]:
    """``(receiver, reason)`` for the receiver types that cannot be read."""
    kept = set(niche_types(model))
    skipped = []
    for receiver in receivers:
        if receiver not in kept:
            skipped.append(
                (receiver, f"{receiver!r} keeps no niche (model.get_niche_calibration())")
            )
        elif not np.any(types == receiver):
            skipped.append((receiver, f"no {receiver!r} cell among the {description}"))
    return skipped


def _score(job: tuple, symbols: np.ndarray, n_permutations: int, seed: int | None) -> pd.DataFrame:
    """Score and test the candidate pairs of one sender and receiver type."""
    sender, receiver, head, evidence, bins, candidates = job
    gene_sets = [np.concatenate([c["receptor_genes"], c["target_genes"]]) for c in candidates]
    scores, p_values = matched_set_test(evidence, gene_sets, bins, n_permutations, seed)

    def mean_of(genes: np.ndarray) -> float:
        return float(evidence[genes].mean()) if genes.size else np.nan

    frame = pd.DataFrame(
        {
            "sender_type": sender,
            "receiver_type": receiver,
            "ligand": [c["ligand"] for c in candidates],
            "receptor": [c["receptor"] for c in candidates],
            "interaction_type": [c["interaction_type"] for c in candidates],
            "ligand_fraction": [c["ligand_fraction"] for c in candidates],
            "receptor_fraction": [c["receptor_fraction"] for c in candidates],
            "n_targets": np.array([c["target_genes"].size for c in candidates], dtype=np.int64),
            "head": head,
            "receptor_score": [mean_of(c["receptor_genes"]) for c in candidates],
            "target_score": [mean_of(c["target_genes"]) for c in candidates],
            "score": scores,
            "p_value": p_values,
            "top_genes": [
                ";".join(symbols[genes[np.argsort(-evidence[genes], kind="stable")][:_N_TOP_GENES]])
                for genes in gene_sets
            ],
        }
    )
    frame["head"] = frame["head"].astype(np.int64)
    frame = frame.sort_values(["p_value", "score"], ascending=[True, False], kind="stable")
    return frame.assign(rank=np.arange(1, len(frame) + 1, dtype=np.int64))
