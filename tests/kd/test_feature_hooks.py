import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lightning_distill import FeatureHooks
from tests.helpers import Recurrent


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


@pytest.mark.parametrize("detach", [False, True])
def test_output_overwritten_in_place_later_is_read_as_the_module_gave_it(detach):
    # conv -> batch norm -> ReLU(inplace=True): the ReLU overwrites the batch norm's output;
    # the hooks must give the batch norm's output, as with an out-of-place ReLU (and the same
    # gradients through it)
    torch.manual_seed(0)
    in_place = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
    out_of_place = copy.deepcopy(in_place)
    out_of_place[2] = nn.ReLU()
    x = torch.randn(2, 1, 6, 6)
    found = {}
    for name, model in (("in place", in_place), ("out of place", out_of_place)):
        with FeatureHooks(model, ["1"], detach=detach) as hooks:
            model(x)
            features = hooks["1"]
            assert bool((features < 0).any())  # not rectified
            if not detach:
                features.square().mean().backward()
                found[name + " grad"] = model[0].weight.grad.clone()
            found[name] = features.detach()
    torch.testing.assert_close(found["in place"], found["out of place"], rtol=0, atol=0)
    if not detach:
        torch.testing.assert_close(found["in place grad"], found["out of place grad"])


def test_residual_sum_in_place_does_not_change_the_captured_output():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            out = self.bn(x)
            out += x  # in place, as torchvision's residual blocks add the identity
            return out

    block = Block()
    x = torch.randn(5, 3)
    with FeatureHooks(block, ["bn"], detach=True) as hooks:
        block(x)
        torch.testing.assert_close(hooks["bn"], block.bn(x).detach())


class _ModelOutput(OrderedDict):
    """As transformers' ModelOutput: an ordered mapping built from keywords whose entries are
    read as attributes too (kept in both places)."""

    def __init__(self, **entries):
        super().__init__(**entries)
        self.__dict__.update(entries)


class _Pair(tuple):
    """A tuple type built from two arguments, not from an iterable of its items."""

    def __new__(cls, first, second):
        return super().__new__(cls, (first, second))


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("kind", ["OrderedDict", "ModelOutput", "Pair"])
def test_an_output_container_keeps_its_type_and_its_entries_are_copies(kind, detach):
    class Head(nn.Module):
        def forward(self, x):
            logits, hidden = x * 2, x + 1
            if kind == "OrderedDict":
                return OrderedDict(logits=logits, hidden=hidden)
            if kind == "ModelOutput":
                return _ModelOutput(logits=logits, hidden=hidden)
            return _Pair(logits, hidden)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = Head()

        def forward(self, x):
            out = self.head(x)
            for value in out.values() if isinstance(out, OrderedDict) else out:
                value.zero_()  # a later in-place write: the captured output must not see it
            return out

    x = torch.randn(3, 2, requires_grad=True)
    model = Model()
    with FeatureHooks(model, ["head"], detach=detach) as hooks:
        model(x.clone())
        found = hooks["head"]
    expected = (x * 2, x + 1)
    if kind == "Pair":
        assert type(found) is tuple and len(found) == 2  # cannot be rebuilt: a tuple of them
        values = list(found)
    else:
        assert type(found) is {"OrderedDict": OrderedDict, "ModelOutput": _ModelOutput}[kind]
        assert list(found) == ["logits", "hidden"]
        values = list(found.values())
        if kind == "ModelOutput":
            assert found.logits is found["logits"] and found.hidden is found["hidden"]
    for value, reference in zip(values, expected):
        torch.testing.assert_close(value, reference.detach())
        assert value.requires_grad is not detach


def test_a_name_with_an_element_keeps_that_element_of_a_tuple_output():
    torch.manual_seed(0)
    model, x = Recurrent(5), torch.randn(4, 7, 3)
    with FeatureHooks(model, ["rnn[0]", "rnn[1]", "head"]) as hooks:
        model(x)
        sequence, state = hooks["rnn[0]"], hooks["rnn[1]"]
    reference_sequence, reference_state = model.rnn(x)
    torch.testing.assert_close(sequence, reference_sequence)
    torch.testing.assert_close(state, reference_state)
    # a submodule whose own name ends in [k] (a ModuleDict key) is that submodule
    holder = nn.ModuleDict({"a[0]": nn.Linear(2, 2)})
    with FeatureHooks(holder, ["a[0]"]) as hooks:
        out = holder["a[0]"](torch.ones(1, 2))
        assert torch.equal(hooks["a[0]"], out)


def test_an_element_of_an_output_that_has_none_is_a_clear_error():
    model, x = Recurrent(5), torch.randn(4, 7, 3)
    with pytest.raises(
        ValueError, match=r"'rnn\[2\]' picks element 2 of a submodule's output of 2"
    ):
        with FeatureHooks(model, ["rnn[2]"], argument="features (student_layer)"):
            model(x)
    with pytest.raises(TypeError, match=r"'head\[0\]' picks element 0.*returned a Tensor"):
        with FeatureHooks(model, ["head[0]"]):
            model(x)
    with pytest.raises(ValueError, match=r"no submodule named 'rnx'"):
        FeatureHooks(model, ["rnx[0]"])


def test_detach_set_after_construction_is_checked_as_the_constructor_does():
    # a truthy non-bool set later had been read as True, silently
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError) as built:
        FeatureHooks(model, ["0"], detach="yes")
    hooks = FeatureHooks(model, ["0"])
    with pytest.raises(TypeError) as set_later:
        hooks.detach = "yes"
    assert str(set_later.value) == str(built.value) == "detach must be a bool; got 'yes'."
    hooks.detach = True
    with hooks:
        model(torch.ones(1, 2, requires_grad=True))
        assert not hooks.outputs("0")[0].requires_grad
