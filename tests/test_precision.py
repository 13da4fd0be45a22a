"""autocast_off: a context wherever torch has autocast, a plain one where it has none."""

import contextlib

import torch

from lightning_distill._precision import autocast_off


def test_autocast_off_disables_autocast_where_torch_has_it():
    x = torch.ones(2, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16), autocast_off(x):
        assert (x @ x).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16  # what it undoes


def test_autocast_off_is_a_plain_context_where_torch_has_no_autocast(monkeypatch):
    # torch.autocast raises "unsupported autocast device_type" there even when disabled (MPS
    # before torch 2.5), and meta tensors have none
    assert isinstance(autocast_off(torch.empty(2, device="meta")), contextlib.nullcontext)
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device: False)
    context = autocast_off(torch.ones(2))
    assert isinstance(context, contextlib.nullcontext)
    with context:
        pass
