import pytest
import torch
from torch import nn

from lightning_distill import FeatureHooks


class SharedBlock(nn.Module):
    """Applies the same block twice, so one submodule runs twice per forward."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 6)
        self.block = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.block(self.block(self.stem(x))))


def test_captures_named_outputs_and_removes_hooks():
    model = SharedBlock()
    x = torch.randn(3, 4)
    with FeatureHooks(model, ["stem", "block.1"]) as hooks:
        out = model(x)
        stem = hooks["stem"]
        first, second = hooks.outputs("block.1")
        assert hooks["block.1"] is second
        assert first.requires_grad  # not detached by default: usable in a loss
    # the reference calls run after the hooks are gone
    torch.testing.assert_close(stem, model.stem(x))
    torch.testing.assert_close(first, model.block(model.stem(x)))
    torch.testing.assert_close(second, model.block(first))
    torch.testing.assert_close(out, model(x))
    for module in model.modules():
        assert not module._forward_hooks
    with pytest.raises(RuntimeError, match="inside"):
        hooks.outputs("stem")


def test_nothing_retained_between_uses():
    model = SharedBlock()
    hooks = FeatureHooks(model, ["block"], detach=True)
    with hooks:
        model(torch.randn(2, 4))
        assert len(hooks.outputs("block")) == 2
        assert not hooks["block"].requires_grad
    with hooks:
        assert hooks.outputs("block") == []
        assert "block" not in hooks
        with pytest.raises(RuntimeError, match="has not run"):
            hooks["block"]


def test_unknown_name_lists_closest_names():
    model = SharedBlock()
    with pytest.raises(ValueError, match=r"names: .*no submodule named 'blok'.*'block'"):
        FeatureHooks(model, ["blok"])
    with pytest.raises(TypeError, match="names"):
        FeatureHooks(model, [3])
    with pytest.raises(TypeError, match="model"):
        FeatureHooks("not a model", ["x"])


@pytest.mark.parametrize("names", [None, 3, [None], ["0", 1]])
def test_names_that_are_not_module_names_are_named(names):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="names must (be a module name|hold module names)"):
        FeatureHooks(model, names)
    with pytest.raises(ValueError, match="names must name at least one submodule; got an empty"):
        FeatureHooks(model, [])
