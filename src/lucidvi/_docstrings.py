"""Parameter text shared by several public signatures, substituted by docrep (as in scvi-tools).

A docstring decorated with ``@lucidvi_dsp.dedent`` is dedented, then every ``%(name)s`` in it is
replaced by the entry ``name`` below (so a literal percent sign must be written ``%%`` there).
Each entry is one numpydoc parameter: its name line, then its description indented by 4 spaces;
the placeholder stands at the indentation of the docstring's other parameter names.
"""

from __future__ import annotations

from docrep import DocstringProcessor

# ------------------------------------------------------------------- models (lucidvi.model)
_MODEL_PARAMETERS: dict[str, str] = {
    # get_* methods: which data and cells
    "model_adata": """adata
    Data registered with :meth:`setup_anndata`; the training data when ``None``.""",
    "model_new_adata": """adata
    Data with the training data's genes, registered with :meth:`setup_anndata` (or set up
    like the training data on first use); the training data when ``None``.""",
    "model_indices": """indices
    Cells (rows of ``adata``); all when ``None``.""",
    "model_receivers": """indices
    Receivers (rows of ``adata``); all when ``None``.""",
    "model_batch_size": """batch_size
    Receivers per minibatch.""",
    # train and the fits behind it
    "model_em_tol": """tol
    Relative change of the log-likelihood at which EM stops. At 1e-5, EM takes about a third
    of the iterations it takes at 1e-6, and the benchmarks' partitions are as good or better.""",
    "model_progress_bar": """progress_bar
    Show progress bars (scvi-tools' style).""",
    "model_plan_kwargs": """plan_kwargs
    Arguments of the training plan, :class:`~lucidvi.train.EpochLoggingTrainingPlan` (``lr``,
    ``weight_decay``, ...); they override the model's defaults.""",
}

# ------------------------------------------------- interpretation results (lucidvi.interpretation)
_RESULT_PARAMETERS: dict[str, str] = {
    # compute() of the InteractionVI results
    "interaction_model": """model
    A trained :class:`~lucidvi.model.InteractionVI` with heads.""",
    "interaction_adata": """adata
    Registered data; the training data when ``None``.""",
    "interaction_indices": """indices
    Receivers (default: the held-out cells of the training data, all cells of other data).""",
    "interaction_batch_size": """batch_size
    Receivers per minibatch of the predictions.""",
    "interaction_sender_types": """sender_types
    Sender types, masked one at a time (default: every type).""",
    "interaction_pair": """sender_type
    Sender type.
receiver_type
    Receiver type.""",
    # compute() of the results that read expression from an AnnData
    "expression_layer": """layer
    Layer of ``adata`` with the expression (default ``adata.X``).""",
    "log_normalize": """log_normalize
    Whether the layer holds counts to log-normalise; ``None`` decides from the values
    (non-negative integers are counts).""",
    # statistics
    "alpha": """alpha
    Significance level, in (0, 1).""",
    "confidence": """confidence
    Level of the bootstrap intervals, in (0, 1).""",
    "random_seed": """seed
    Seed of the random draws (``None``: a fresh one each call).""",
    # plots (lucidvi.pl and the plot_* methods of the results)
    "ax": """ax
    Axes to draw into (a new figure when ``None``).""",
    "cmap": """cmap
    Colour map.""",
    "plot_kwargs": """**kwargs
    The other keyword arguments of that function.""",
}

# ----------------------------------------------- training, modules and metrics (lower layers)
_LOWER_PARAMETERS: dict[str, str] = {
    "loader_options": """shuffle
    Draw a new random order every epoch.
drop_last
    Drop a last, incomplete minibatch.
seed
    Seed of the shuffling generator.
pin_memory
    Return minibatches in page-locked memory (faster copies to a GPU).""",
    "loss_inputs": """tensors
    The minibatch.
inference_outputs
    Output of :meth:`inference`.
generative_outputs
    Output of :meth:`generative`.""",
    "labels_clusters": """labels
    The true label of each cell: a 1-d array-like of hashable values (list, array, pandas
    Series or Categorical).
clusters
    The cluster of each cell, same length as ``labels``; the ids need not resemble the
    labels, and there may be more or fewer clusters than labels.""",
}

lucidvi_dsp = DocstringProcessor(**_MODEL_PARAMETERS, **_RESULT_PARAMETERS, **_LOWER_PARAMETERS)
