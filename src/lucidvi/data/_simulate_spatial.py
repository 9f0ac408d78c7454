"""Spatial niches with planted sender-receiver interactions, built from real single-cell counts."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

_N_FEATURES = 200  # random Fourier features of the composition field
_FIELD_SD = 1.5  # standard deviation of each type's log-weight field
_INTERACTION_COLUMNS = ["sender", "receiver", "length_scale", "n_near", "n_far"]
_GENE_COLUMNS = ["sender", "receiver", "gene", "log2_fold_change"]
_UNIFORM_WEIGHT = 0.05  # share of the uniform distribution in the base type frequencies
_MIN_SUBSTATE_CELLS = 20
_N_PCS = 10
_ALPHA, _MIN_ABS_LOG2FC = 0.05, 0.5


def _log_normalise(counts: sp.csr_matrix) -> np.ndarray:
    """Dense ``log1p(counts / total * 1e4)`` per cell (cells with no counts stay zero)."""
    totals = np.asarray(counts.sum(1)).ravel().astype(np.float64)
    scaled = sp.diags(1e4 / np.maximum(totals, 1.0)) @ counts.astype(np.float64)
    return np.log1p(scaled.toarray())


def _substates(counts: sp.csr_matrix, cell_type: str) -> np.ndarray:
    """Split one type's cells with k-means; True marks the smaller ("near") cluster."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    if counts.shape[0] < 2 * _MIN_SUBSTATE_CELLS:
        raise ValueError(
            f"Receiver type {cell_type!r} has {counts.shape[0]} cells; the split into two "
            f"sub-states needs at least {2 * _MIN_SUBSTATE_CELLS}. Choose another receiver."
        )
    expression = _log_normalise(counts)
    n_pcs = min(_N_PCS, expression.shape[1], expression.shape[0] - 1)
    with threadpool_limits(limits=1):  # small problems: one thread is fast and reproducible
        pcs = PCA(n_pcs, svd_solver="randomized", random_state=0).fit_transform(expression)
        labels = KMeans(n_clusters=2, n_init=10, random_state=0).fit_predict(pcs)
    sizes = np.bincount(labels, minlength=2)
    if sizes.min() < _MIN_SUBSTATE_CELLS:
        raise ValueError(
            f"The k-means split of receiver type {cell_type!r} gives sub-states of {sizes[0]} "
            f"and {sizes[1]} cells; each needs at least {_MIN_SUBSTATE_CELLS}. Choose another "
            "receiver."
        )
    return labels == int(np.argmin(sizes))  # argmin takes label 0 on ties


def _planted_genes(counts: sp.csr_matrix, near: np.ndarray, var_names: pd.Index):
    """Genes whose log-normalised expression differs between the two sub-states."""
    from scipy.stats import false_discovery_control, ttest_ind

    expression = _log_normalise(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        t, p = ttest_ind(expression[near], expression[~near], equal_var=False)
    p = np.where(np.isnan(p), 1.0, p)
    q = false_discovery_control(p, method="bh")
    mean_near, mean_far = np.expm1(expression[near]).mean(0), np.expm1(expression[~near]).mean(0)
    log2fc = np.log2((mean_near + 1e-9) / (mean_far + 1e-9))
    keep = (q < _ALPHA) & (np.abs(log2fc) >= _MIN_ABS_LOG2FC) & (np.sign(t) == np.sign(log2fc))
    return var_names[keep].tolist(), log2fc[keep].tolist()


def _check_inputs(labels_key, interactions, n_cells, density, n_domains, types):
    if n_cells < 1 or not density > 0 or n_domains < 1:
        raise ValueError(
            f"n_cells, density and n_domains must be positive, got n_cells={n_cells}, "
            f"density={density}, n_domains={n_domains}."
        )
    receivers = [receiver for _, receiver, _ in interactions]
    for sender, receiver, length_scale in interactions:
        for name in (sender, receiver):
            if name not in types:
                raise ValueError(
                    f"Type {name!r} of interaction ({sender!r}, {receiver!r}) is not among the "
                    f"labels in adata.obs[{labels_key!r}]: {list(types)}."
                )
        if sender == receiver:
            raise ValueError(
                f"Interaction ({sender!r}, {receiver!r}) has the same sender and receiver; "
                "use two different types."
            )
        if receivers.count(receiver) > 1:
            raise ValueError(
                f"Receiver type {receiver!r} appears in {receivers.count(receiver)} interactions; "
                "one interaction per receiver is supported, so merge or drop the others."
            )
        if not length_scale > 0:
            raise ValueError(
                f"The length scale of ({sender!r}, {receiver!r}) must be positive, "
                f"got {length_scale}."
            )


def _draw(
    rng: np.random.Generator, pool: np.ndarray, positions: np.ndarray, side: float
) -> np.ndarray:
    """Assign real cells of ``pool`` to ``positions``: evenly used, neighbours independent.

    The positions are ordered along a Z-order (Morton) curve and dealt out in rounds of
    ``len(pool)`` consecutive positions, each round a fresh random order of the pool: every real
    cell is used once per round (as evenly as possible), so its copies lie in different parts of
    the type's territory, and which real cells sit next to each other changes from round to
    round. One fixed order repeated along the curve would make each cell's neighbours the same
    real cells for all its copies, a dependence between neighbours' profiles that a niche model
    can learn (its held-out likelihood then gains from memorised neighbours, not interactions).
    """
    if len(positions) == 0:
        return np.empty(0, dtype=np.int64)
    grid = np.clip((positions / side * 1024).astype(np.int64), 0, 1023)
    code = np.zeros(len(positions), dtype=np.int64)
    for bit in range(10):
        code |= ((grid[:, 0] >> bit) & 1) << (2 * bit) | ((grid[:, 1] >> bit) & 1) << (2 * bit + 1)
    order = np.argsort(code, kind="stable")
    n_rounds = -(-len(positions) // len(pool))
    dealt = np.concatenate([rng.permutation(pool) for _ in range(n_rounds)])[: len(positions)]
    source = np.empty(len(positions), dtype=np.int64)
    source[order] = dealt
    return source


def _composition_field(rng, positions, base, side, n_domains):
    """Sample a type per position from ``base * exp(field)`` (random Fourier features)."""
    length = side / n_domains
    freqs = rng.normal(scale=1.0 / length, size=(_N_FEATURES, 2))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=_N_FEATURES)
    coefs = rng.normal(size=(_N_FEATURES, len(base)))
    features = np.sqrt(2.0 / _N_FEATURES) * np.cos(positions @ freqs.T + phases)
    logits = _FIELD_SD * features @ coefs + np.log(base)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    cumulative = np.cumsum(weights / weights.sum(1, keepdims=True), axis=1)
    draws = rng.random(len(positions))[:, None]
    return np.minimum((cumulative < draws).sum(1), len(base) - 1)


def simulate_spatial_niches(
    adata: AnnData,
    labels_key: str,
    interactions: Sequence[tuple[str, str, float]],
    n_cells: int = 6000,
    *,
    layer: str | None = None,
    density: float = 0.04,
    n_domains: int = 4,
    seed: int = 0,
) -> AnnData:
    r"""Simulate a spatial layout of real cells whose receivers change state near senders.

    Cells are placed at random in a square, given a type by a smoothly varying composition, and
    filled with the counts of a real cell of that type. For each planted interaction
    ``(sender, receiver, length_scale)``, the real cells of the receiver type are split into two
    sub-states; a simulated receiver copies a cell of the "near" sub-state when a simulated
    sender lies within ``length_scale`` of it, and of the "far" sub-state otherwise. The genes
    that differ between the two sub-states are the truth a spatial interaction model should
    recover.

    Parameters
    ----------
    adata
        Real single-cell data with integer counts, e.g. :func:`lucidvi.data.cbmc`.
    labels_key
        Column of ``adata.obs`` with the cell types.
    interactions
        ``(sender type, receiver type, length scale)`` triples; each receiver type appears
        once, and ``[]`` gives the null without interactions.
    n_cells
        Number of simulated cells.
    layer
        Layer of ``adata`` with the counts (``X`` when None).
    density
        Cells per unit area; the square's side is ``sqrt(n_cells / density)``.
    n_domains
        Side of the square in correlation lengths of the composition field (larger is patchier).
    seed
        Seed of the random generator (layout, types and copied cells; not the sub-states).

    Returns
    -------
    AnnData with the copied integer counts (CSR, ``int32``) in ``X`` and ``layers["counts"]``,
    ``var`` copied from ``adata``, ``obsm["spatial"]`` (positions, ``n_cells x 2``) and:

    - ``obs[labels_key]``: the type (categorical, with the categories of ``adata`` that hold
      cells, in their order);
    - ``obs["source_cell"]``: the obs name of the copied real cell;
    - ``obs["substate"]``: ``"near"``, ``"far"``, or ``"none"`` for cells of no receiver type;
      ``obs["interacting"]``: ``substate == "near"``;
    - ``obs["distance_to_sender"]``: distance to the nearest simulated cell of the sender type
      (``inf`` when there is none, NaN for cells of no receiver type);
    - ``uns["spatial_niches"]``: ``"interactions"``, a DataFrame with one row per planted pair
      (``sender``, ``receiver``, ``length_scale``, ``n_near`` and ``n_far``: the simulated
      receivers in each sub-state); ``"genes"``, a DataFrame of the planted genes (``sender``,
      ``receiver``, ``gene``, ``log2_fold_change`` near over far); and ``"density"``,
      ``"side"``, ``"n_domains"``, ``"seed"``, ``"labels_key"``. Tables, so the result can be
      written with ``write_h5ad``.

    Notes
    -----
    *Layout.* Positions are uniform in the square ``[0, L]^2`` with ``L = sqrt(n_cells /
    density)``. A disc of radius ``r`` holds on average ``density * pi * r^2`` cells: 28 for
    ``r = 15`` at the default density, so the 30 nearest neighbours reach about that far.

    *Composition.* Type ``t`` has base weight ``pi_t = 0.95 f_t + 0.05 / K``, with ``f_t`` its
    frequency in ``adata`` and ``K`` the number of types (the uniform share keeps rare types
    present), and a log-weight field built from ``M = 200`` random Fourier features shared
    by all types,

    .. math::

        g_t(x) = 1.5 \sqrt{2 / M} \sum_{m=1}^{M} a_{tm} \cos(\omega_m^\top x + b_m), \quad
        \omega_m \sim N(0, \ell^{-2} I_2),\ b_m \sim U(0, 2\pi),\ a_{tm} \sim N(0, 1),

    an approximate Gaussian process with covariance ``1.5^2 exp(-|x - x'|^2 / (2 l^2))`` and
    ``l = L / n_domains``, independent between types. Each position takes type ``t`` with
    probability proportional to ``pi_t exp(g_t(x))``. With the defaults ``l`` is 97 at
    ``n_cells = 6000`` (69 at 3000), several times length scales of 10-20, so sender and
    receiver types share some regions and not others; a warning is given when ``l`` is below
    three times the largest length scale. The square holds only about ``n_domains^2``
    domains, so the overall proportions vary between seeds and depart from ``pi``.

    *Sub-states.* For each receiver type, the real cells of that type are split by k-means
    (``k = 2``, 10 starts, ``random_state=0``) on the top 10 principal components (randomized
    SVD, ``random_state=0``; fewer for small types) of ``log1p(counts / total * 1e4)``
    computed on that type's cells alone. The smaller cluster is "near" (the cluster labelled 0
    on a tie). Each needs at least 20 cells. The split depends on ``adata`` only, not on
    ``seed``.

    *Counts.* Every simulated cell copies the counts of a real cell of its type, or, for a
    receiver, of the sub-state given by whether its distance to the nearest simulated sender is
    at most ``length_scale``. Each real cell is used as evenly as possible (never twice while
    its pool lasts) and its copies are placed apart: the positions are ordered along a
    Z-order curve and dealt out in rounds, each a fresh random order of the pool, so a cell's
    copies lie in different parts of the territory and the real cells next to one copy are not
    those next to another (profiles of neighbours carry no information about each other beyond
    their types and sub-states). Each type has its own
    random stream, so the null (``interactions=[]``) with the same ``seed`` has the same
    positions, types and copied cells, receivers apart.

    *Planted genes.* Welch's t-test between the sub-states on ``log1p(counts / total * 1e4)``
    of the real cells, with Benjamini-Hochberg adjusted p-values below 0.05, an absolute
    ``log2((mean_near + 1e-9) / (mean_far + 1e-9)) >= 0.5`` on the normalised expression
    ``counts / total * 1e4``, and a fold change of the same sign as the t statistic.

    Examples
    --------
    >>> adata = lucidvi.data.simulate_spatial_niches(
    ...     lucidvi.data.cbmc(), "cell_type", [("B", "CD14+ Mono", 15.0)], n_cells=3000
    ... )
    >>> adata.obs["substate"].value_counts()
    """
    from scipy.spatial import cKDTree

    if labels_key not in adata.obs:
        raise ValueError(
            f"labels_key {labels_key!r} is not a column of adata.obs; choose one of "
            f"{list(adata.obs.columns)}."
        )
    labels = adata.obs[labels_key]
    if isinstance(labels.dtype, pd.CategoricalDtype):
        types = [c for c in labels.cat.categories if (labels == c).any()]
    else:
        types = sorted(pd.unique(labels.dropna()))
    interactions = [(s, r, float(ls)) for s, r, ls in interactions]
    _check_inputs(labels_key, interactions, n_cells, density, n_domains, types)
    counts = sp.csr_matrix(adata.X if layer is None else adata.layers[layer])
    if not (np.all(counts.data >= 0) and np.all(counts.data == np.round(counts.data))):
        where = "X" if layer is None else f"layers[{layer!r}]"
        raise ValueError(f"adata.{where} must hold non-negative integer counts; pass the counts.")

    side = float(np.sqrt(n_cells / density))
    if interactions and side / n_domains < 3 * max(ls for *_, ls in interactions):
        warnings.warn(
            f"The composition field's correlation length {side / n_domains:.1f} is below three "
            "times the largest length scale; lower n_domains or raise n_cells.",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, side, size=(n_cells, 2))
    label_codes = pd.Categorical(labels, categories=types).codes
    frequencies = np.bincount(label_codes[label_codes >= 0], minlength=len(types))
    frequencies = frequencies / frequencies.sum()
    base = (1 - _UNIFORM_WEIGHT) * frequencies + _UNIFORM_WEIGHT / len(types)
    sim_codes = _composition_field(rng, positions, base, side, n_domains)

    pools = {t: np.flatnonzero(label_codes == i) for i, t in enumerate(types)}
    streams = dict(zip(types, rng.spawn(len(types)), strict=True))  # one per type: the null
    substate = np.full(n_cells, "none", dtype=object)  # shares the non-receivers' copies
    distance = np.full(n_cells, np.nan)
    source = np.empty(n_cells, dtype=np.int64)
    for i, t in enumerate(types):
        members = sim_codes == i
        source[members] = _draw(streams[t], pools[t], positions[members], side)
    summaries, gene_tables = [], []
    for sender, receiver, length_scale in interactions:
        receivers = np.flatnonzero(sim_codes == types.index(receiver))
        senders = positions[sim_codes == types.index(sender)]
        dist = np.full(len(receivers), np.inf)
        if len(senders) and len(receivers):
            dist = cKDTree(senders).query(positions[receivers])[0]
        distance[receivers] = dist
        real = counts[pools[receiver]]
        is_near = _substates(real, receiver)
        genes, log2fc = _planted_genes(real, is_near, adata.var_names)
        for name, pool, members in (
            ("near", pools[receiver][is_near], receivers[dist <= length_scale]),
            ("far", pools[receiver][~is_near], receivers[dist > length_scale]),
        ):
            substate[members] = name
            source[members] = _draw(streams[receiver], pool, positions[members], side)
        summaries.append(
            {
                "sender": sender,
                "receiver": receiver,
                "length_scale": float(length_scale),
                "n_near": int((dist <= length_scale).sum()),
                "n_far": int((dist > length_scale).sum()),
            }
        )
        gene_tables.append(
            pd.DataFrame(
                {
                    "sender": sender,
                    "receiver": receiver,
                    "gene": list(genes),
                    "log2_fold_change": np.asarray(log2fc, dtype=np.float64),
                }
            )  # fmt: skip
        )

    matrix = counts[source].astype(np.int32)
    width = len(str(n_cells - 1))
    obs = pd.DataFrame(
        {
            labels_key: pd.Categorical.from_codes(sim_codes, categories=types),
            "source_cell": np.asarray(adata.obs_names)[source],
            "substate": pd.Categorical(substate, categories=["near", "far", "none"]),
            "interacting": substate == "near",
            "distance_to_sender": distance,
        },
        index=[f"cell_{i:0{width}d}" for i in range(n_cells)],
    )
    out = AnnData(X=matrix, obs=obs, var=adata.var.copy())
    out.layers["counts"] = matrix.copy()
    out.obsm["spatial"] = positions
    out.uns["spatial_niches"] = {
        "interactions": pd.DataFrame(summaries, columns=_INTERACTION_COLUMNS),
        "genes": (
            pd.concat(gene_tables, ignore_index=True)
            if gene_tables
            else pd.DataFrame(columns=_GENE_COLUMNS)
        ),
        "density": float(density),
        "side": side,
        "n_domains": int(n_domains),
        "seed": int(seed),
        "labels_key": labels_key,
    }
    return out
