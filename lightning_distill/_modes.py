"""A model put in evaluation mode for a block and given its own modes back after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def has_own_train(module: nn.Module) -> bool:
    """Whether ``module``'s class overrides ``train`` or ``eval`` (torch's set the flags only)."""
    return type(module).train is not nn.Module.train or type(module).eval is not nn.Module.eval


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every submodule of ``model`` in evaluation mode inside the block; every submodule's own
    mode afterwards.

    A module's own ``train()`` (one that switches input noise, a schedule, or keeps a part
    frozen) has its say both ways: ``model.eval()`` going in, and coming out the model's
    ``train()`` with the root's recorded mode, then, parents first, each module's own
    ``train()`` with its recorded mode where it still differs (the flags alone would leave it
    behaving as in evaluation while it reads as training). A model without such a module has
    its flags set and put back directly (what ``eval()`` does, without its recursion).
    """
    modes = [(module, module.training) for module in model.modules()]
    own_train = any(has_own_train(module) for module, _ in modes)
    if own_train:
        model.eval()
    else:
        for module, mode in modes:
            if mode:
                module.training = False
    try:
        yield model
    finally:
        if own_train:
            model.train(modes[0][1])
            for module, mode in modes:
                if module.training != mode:
                    if has_own_train(module):
                        module.train(mode)
                    else:
                        module.training = mode
        else:
            for module, mode in modes:
                if module.training != mode:
                    module.training = mode
