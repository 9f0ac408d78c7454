import pytest
import torch

from lucidvi.nn import NeighborhoodAttention


def _attention(values="sender"):
    torch.manual_seed(0)
    return NeighborhoodAttention(
        n_labels=3, n_input=6, n_heads=2, head_dim=4, distance_unit=1.0, values=values
    )


def test_weights_cover_occupied_slots_and_the_null_slot():
    attention = _attention()
    senders = torch.randn(5, 6)
    slots = torch.tensor([[0, 1, -1], [2, 3, 4]])
    distances = torch.tensor([[1.0, 2.0, float("inf")], [1.0, 1.0, 3.0]])
    outputs, weights, values = attention(torch.tensor([0, 2]), senders, slots, distances)
    assert outputs.shape == (2, 2, 4) and weights.shape == (2, 2, 4) and values.shape == (5, 2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2))
    assert (weights[0, :, 2] == 0).all()  # the empty slot
    expected = torch.einsum("hs,shd->hd", weights[1, :, :3], values[slots[1]])
    torch.testing.assert_close(outputs[1], expected)


def test_masked_senders_and_ablated_heads():
    attention = _attention()
    senders = torch.randn(3, 6)
    slots = torch.tensor([[0, 1, 2]])
    distances = torch.ones(1, 3)
    keep = torch.tensor([False, False, False])
    outputs, weights, _ = attention(torch.tensor([1]), senders, slots, distances, sender_keep=keep)
    torch.testing.assert_close(weights[..., -1], torch.ones(1, 2))  # only the null slot is left
    assert (outputs == 0).all()
    outputs, _, _ = attention(
        torch.tensor([1]), senders, slots, distances, head_keep=torch.tensor([True, False])
    )
    assert (outputs[:, 1] == 0).all() and (outputs[:, 0] != 0).any()


def test_farther_copies_of_a_sender_get_less_weight():
    attention = _attention()
    with torch.no_grad():
        attention.raw_decay.fill_(1.0)
    sender = torch.randn(1, 6)
    slots = torch.tensor([[0, 0]])
    _, weights, _ = attention(torch.tensor([0]), sender, slots, torch.tensor([[1.0, 3.0]]))
    # identical keys: the weights differ by exp(-decay * 2 distance units)
    ratio = weights[0, :, 1] / weights[0, :, 0]
    torch.testing.assert_close(ratio, torch.exp(-2 * attention.decay))


def test_constant_values_scale_with_the_attention_paid_to_neighbours():
    attention = _attention("constant")
    senders = torch.randn(5, 6)
    slots = torch.tensor([[0, 1, -1], [2, 3, 4]])
    distances = torch.tensor([[1.0, 2.0, float("inf")], [1.0, 1.0, 3.0]])
    outputs, weights, values = attention(torch.tensor([0, 2]), senders, slots, distances)
    # every sender carries the head's one value: output = (1 - null weight) * value
    expected = (1 - weights[..., -1])[..., None] * attention.constant_values[None]
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(values, attention.constant_values.expand(5, -1, -1))


def test_receivers_turned_off_attend_to_no_neighbour():
    attention = _attention("constant")
    senders = torch.randn(3, 6)
    slots = torch.tensor([[0, 1, 2], [0, 1, 2]])
    keep = torch.tensor([False, True])
    outputs, weights, _ = attention(
        torch.tensor([1, 1]), senders, slots, torch.ones(2, 3), receiver_keep=keep
    )
    torch.testing.assert_close(weights[0, :, -1], torch.ones(2))
    assert (outputs[0] == 0).all() and (outputs[1] != 0).any()


def test_unknown_value_kind_is_refused():
    with pytest.raises(ValueError, match="constant"):
        _attention("expression")
