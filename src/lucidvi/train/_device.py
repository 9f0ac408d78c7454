"""The torch device that a Lightning-style ``accelerator=``/``devices=`` pair names."""

from __future__ import annotations

import torch


def torch_device(
    accelerator: str = "auto",
    devices: int | list[int] | str = "auto",
    *,
    needs_float64: bool = False,
) -> torch.device:
    """Return the device for code outside Lightning (batch EM), chosen as Lightning would.

    Parameters
    ----------
    accelerator
        ``"auto"`` (CUDA, then MPS, then the CPU: the first available), ``"cpu"``,
        ``"gpu"``/``"cuda"`` or ``"mps"``.
    devices
        As in Lightning: a number of devices (here 1), a list of one device index, or
        ``"auto"``/``-1`` (device 0).
    needs_float64
        The computation needs float64, which MPS lacks: ``"auto"`` then skips MPS, and an
        explicit ``"mps"`` raises.

    Returns
    -------
    The device.

    Raises
    ------
    ValueError
        For an unknown or unavailable accelerator, or ``devices`` naming more than one device:
        this code runs in one process on one device.
    """
    _check_one_device(devices)
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    kind = {"gpu": "cuda", "cuda": "cuda", "mps": "mps", "cpu": "cpu"}.get(accelerator)
    if accelerator == "auto":
        candidates = ("cuda", "cpu") if needs_float64 else ("cuda", "mps", "cpu")
        kind = next(k for k in candidates if available[k])
    if kind is None:
        raise ValueError(
            f"accelerator must be 'auto', 'cpu', 'gpu', 'cuda' or 'mps', got {accelerator!r}."
        )
    if not available[kind]:
        name = "GPU" if kind == "cuda" else kind.upper()
        raise ValueError(f"accelerator={accelerator!r} but no {name} is available.")
    if kind == "mps" and needs_float64:
        raise ValueError(
            "This computation needs float64, which MPS lacks: use accelerator='cpu' (or 'gpu')."
        )
    if kind != "cuda":
        return torch.device(kind)
    index = devices[0] if isinstance(devices, list | tuple) else 0
    return torch.device(f"cuda:{index}")


def _check_one_device(devices: int | list[int] | str) -> None:
    """Raise unless ``devices`` asks for one device, read as Lightning reads it.

    An integer is a number of devices (``devices=2`` is two devices, not device 2), a list
    holds device indices, ``"auto"`` and ``-1`` mean all available devices, of which this
    code takes the first.
    """
    if devices in ("auto", -1, 1, "1"):
        return
    if isinstance(devices, list | tuple) and len(devices) == 1:
        return
    raise ValueError(
        f"devices={devices!r} asks for several devices, but this runs in one process on one "
        "device: pass devices=1, or devices=[i] for device i. To spread batch EM over several "
        "processes or machines, register lazy (dask) counts and open a dask.distributed Client "
        "(see the 'Large data' page)."
    )
