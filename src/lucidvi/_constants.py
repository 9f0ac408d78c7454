"""Keys shared across layers: InteractionVI's minibatch tensors and its AnnData entries."""

# tensors in InteractionVI's minibatches, shared by the loader and the module
NEIGHBOR_INDEX_KEY = "neighbor_index"
NEIGHBOR_DISTANCE_KEY = "neighbor_distance"
NEIGHBOR_SLOT_KEY = "neighbor_slot"
SENDER_X_KEY = "sender_X"
SENDER_LABELS_KEY = "sender_labels"
SENDER_INDEX_KEY = "sender_index"
RECEIVER_INDEX_KEY = "receiver_index"

# what InteractionVI.setup_anndata writes into the user's AnnData (documented there)
NEIGHBOR_INDEX_OBSM = "lucidvi_neighbor_index"
NEIGHBOR_DISTANCE_OBSM = "lucidvi_neighbor_distance"
NEIGHBORS_UNS = "lucidvi_neighbors"
