"""A failed allocation in the user's model is re-raised as it is, not as an error about the
input: the CPU allocator raises it as a plain RuntimeError."""

import pytest
import torch
from torch import nn

from lightning_distill._validation import keeps_its_type
from lightning_distill.attribution import attribute

CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 400000000000000 bytes. Error code 12 (Cannot allocate memory)"
)


class Exhausted(nn.Module):
    def __init__(self, message):
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.message = message

    def forward(self, x):
        raise RuntimeError(self.message)


def test_allocation_failures_and_subclasses_keep_their_type_shape_errors_do_not():
    assert keeps_its_type(RuntimeError(CPU_OOM))
    assert keeps_its_type(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert keeps_its_type(NotImplementedError("a subclass"))
    assert not keeps_its_type(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_attribute_lets_a_failed_allocation_through_and_names_a_shape_error():
    x, targets = torch.randn(3, 4), torch.tensor([0, 1, 0])
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        attribute(Exhausted(CPU_OOM), x, targets, "Saliency")
    with pytest.raises(ValueError):
        attribute(Exhausted("mat1 and mat2 shapes cannot be multiplied"), x, targets, "Saliency")
