"""autocast_off: a context wherever torch has autocast, a plain one where it has none."""

import contextlib

import pytest
import torch

from lightning_distill._metric_states import DtypeKeepingMeanMetric
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


def test_a_weighted_update_of_a_mean_torchmetrics_would_unweight_is_refused():
    # under nan_strategy="disable" torchmetrics replaces update's weights with ones, silently
    # (the values 1 and 2 weighted 3 and 1 gave 1.5, not 1.25): refused, as the fix of the
    # evaluation loss's mean needs no weight
    metric = DtypeKeepingMeanMetric(nan_strategy="disable")
    with pytest.raises(TypeError, match=r"^weight must be left at 1 with nan_strategy='disable'"):
        metric.update(torch.tensor(1.0), weight=3)
    metric.update(torch.tensor(1.0).expand(3))
    metric.update(torch.tensor(2.0), weight=1)
    assert float(metric.compute()) == 1.25
    weighted = DtypeKeepingMeanMetric()  # the default strategy keeps the weights: taken
    weighted.update(torch.tensor(1.0), weight=3)
    weighted.update(torch.tensor(2.0))
    assert float(weighted.compute()) == 1.25
