"""Known targets of signalling receptors: a curated map from receptors to Hallmark response sets."""

from __future__ import annotations

import pandas as pd

from ._bundled import gene_sets
from ._ligand_receptor import ORGANISMS, Organism

#: Hallmark set -> the receptors (human symbols) whose signalling the set's genes respond to.
#: Each set was defined from the transcriptional response to the ligands of these receptors
#: (Liberzon et al. 2015); only receptors that signal chiefly through that response are listed.
RECEPTOR_GENE_SETS: dict[str, tuple[str, ...]] = {
    "HALLMARK_INTERFERON_GAMMA_RESPONSE": ("IFNGR1", "IFNGR2"),
    # type I and type III interferons induce the same ISGF3 (STAT1-STAT2-IRF9) programme
    "HALLMARK_INTERFERON_ALPHA_RESPONSE": ("IFNAR1", "IFNAR2", "IFNLR1"),
    "HALLMARK_TNFA_SIGNALING_VIA_NFKB": ("TNFRSF1A", "TNFRSF1B"),
    "HALLMARK_IL6_JAK_STAT3_SIGNALING": ("IL6R", "IL6ST"),
    # not the common gamma chain IL2RG, shared with IL-4 and IL-21, which signal through STAT6/3
    "HALLMARK_IL2_STAT5_SIGNALING": ("IL2RA", "IL2RB"),
    "HALLMARK_TGF_BETA_SIGNALING": ("TGFBR1", "TGFBR2"),
    "HALLMARK_NOTCH_SIGNALING": ("NOTCH1", "NOTCH2", "NOTCH3", "NOTCH4"),
    "HALLMARK_WNT_BETA_CATENIN_SIGNALING": tuple(f"FZD{i}" for i in range(1, 11)),
    "HALLMARK_HEDGEHOG_SIGNALING": ("PTCH1", "PTCH2"),
    "HALLMARK_ANDROGEN_RESPONSE": ("AR",),
    "HALLMARK_ESTROGEN_RESPONSE_EARLY": ("ESR1",),
}
TARGET_COLUMNS = ["receptor", "gene_set", "target"]
#: Mouse receptors whose symbol is not the human one in mouse case.
_MOUSE_RECEPTORS = {"IL6R": "Il6ra"}


def _mouse_symbol(human: str) -> str:
    """Write a human gene symbol the way mouse symbols are written (``IFNGR1`` -> ``Ifngr1``).

    Parameters
    ----------
    human
        A human (HGNC-style, upper-case) gene symbol.

    Returns
    -------
    The symbol with its first letter kept and the rest in lower case. This is a change of
    case, not an ortholog mapping: it is right for the many genes whose mouse ortholog has
    the same name, and wrong (a name no mouse gene has) for the others.
    """
    return human[:1] + human[1:].lower()


def receptor_targets(organism: Organism = "human") -> pd.DataFrame:
    """Known target genes of signalling receptors, from the bundled MSigDB Hallmark sets.

    A small curated map: each receptor is mapped to the Hallmark gene set [#liberzon]_ that
    was defined as the response to its ligands, e.g. ``IFNGR1``/``IFNGR2`` ->
    ``HALLMARK_INTERFERON_GAMMA_RESPONSE``, ``TNFRSF1A``/``TNFRSF1B`` ->
    ``HALLMARK_TNFA_SIGNALING_VIA_NFKB``, ``TGFBR1``/``TGFBR2`` ->
    ``HALLMARK_TGF_BETA_SIGNALING``, ``NOTCH1``-``NOTCH4`` -> ``HALLMARK_NOTCH_SIGNALING``,
    ``FZD1``-``FZD10`` -> ``HALLMARK_WNT_BETA_CATENIN_SIGNALING`` (the full map is
    :data:`RECEPTOR_GENE_SETS` in ``lucidvi/data/_receptor_targets.py``). It is the default
    ``targets`` of :class:`~lucidvi.interpretation.LigandReceptorPairs`.

    Parameters
    ----------
    organism
        ``"human"``, or ``"mouse"``: the human symbols of receptors and targets are written in
        mouse case (``IFNGR1`` -> ``Ifngr1``; see Notes), except ``IL6R``, whose mouse
        ortholog is ``Il6ra``.

    Returns
    -------
    DataFrame
        One row per receptor and target gene: ``receptor``, ``gene_set`` and ``target``.

    Notes
    -----
    Limits, to weigh before reading a pair's targets as evidence:

    - Only 31 receptors of 11 pathways have targets; every other receptor has none (a pair is
      then judged by its receptor alone), so pathways without a Hallmark response set (BMP,
      EGF, chemokines, integrins, ...) cannot gain from their targets.
    - The targets belong to the receptor, not to the pair: all ligands of ``NOTCH1`` share
      them, including CellPhoneDB's ``TNF`` - ``NOTCH1``.
    - Hallmark sets were derived from many cell types and stimuli; a given receiver type
      answers with part of a set, and sets overlap (inflammatory genes are in several).
    - For mouse, target symbols are converted by case, not by orthology: targets whose mouse
      ortholog has another name are absent (they match no gene of the panel).

    For targets of your own (e.g. a NicheNet ligand-target or a CollecTRI table), pass them to
    :meth:`~lucidvi.interpretation.LigandReceptorPairs.compute` as ``targets=``.

    References
    ----------
    .. [#liberzon] Liberzon A. et al. (2015) The Molecular Signatures Database Hallmark Gene
       Set Collection. *Cell Systems* 1, 417-425.

    Examples
    --------
    >>> import lucidvi.data
    >>> targets = lucidvi.data.receptor_targets("human")
    >>> targets.query("receptor == 'IFNGR1'")["gene_set"].unique().tolist()
    ['HALLMARK_INTERFERON_GAMMA_RESPONSE']
    >>> "Stat1" in set(lucidvi.data.receptor_targets("mouse")["target"])
    True
    """
    if organism not in ORGANISMS:
        raise ValueError(f"organism must be one of {list(ORGANISMS)}, got {organism!r}.")
    hallmark = gene_sets("hallmark")
    rows = [
        (receptor, name, target)
        for name, receptors in RECEPTOR_GENE_SETS.items()
        for receptor in receptors
        for target in hallmark[name]
    ]
    table = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    if organism == "mouse":
        table["receptor"] = [
            _MOUSE_RECEPTORS.get(receptor, _mouse_symbol(receptor))
            for receptor in table["receptor"]
        ]
        table["target"] = table["target"].map(_mouse_symbol)
    return table
