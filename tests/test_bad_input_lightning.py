"""Property-based bad-input harness of the Lightning side (hypothesis).

Each row of ``ROWS`` is one argument of one public entry point: the call, the names an error
message may give for it, a strategy of (mostly bad) values, and the invariant a successful
answer must pass. For every generated value the call either

- succeeds with an answer that passes the row's invariant (never NaN), or
- raises ``ValueError``/``TypeError`` whose message names the argument,

never another exception type, and leaves every input as it was (values, teacher modes and
``requires_grad`` flags). To add a case, add a row (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from lightning_distill import DistillationModule, KnowledgeDistillation
from lightning_distill.awd import AWDModule
from lightning_distill.losses import (
    attention_transfer_loss,
    distillation_loss,
    dkd_loss,
    kd_loss,
    label_smoothing_loss,
    pkt_loss,
    rkd_loss,
)
from lightning_distill.metrics import NetworkDissection

EXAMPLES = 25  # per row; the whole file runs in well under a minute on one core

# --------------------------------------------------------------------------- value strategies
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-2.0, max_value=2.0),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, 1, -1, 1e-300, 1e300, 1e6, 1e7]),
)
odd_objects = st.one_of(
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.lists(st.floats(allow_nan=False, width=32), max_size=3),
    st.sampled_from(
        [
            complex(1, 1),
            np.float32(0.5),
            np.int64(3),
            torch.tensor(0.5),
            torch.tensor([0.5, 0.1]),
            object(),
            (1, 2),
        ]
    ),
)
anything = st.one_of(numbers, odd_objects)

FILLS = ("normal", "huge", "tiny", "zero", "nan", "inf", "-inf", "masked")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool)


@st.composite
def tensors(draw, shapes=None, dtypes=DTYPES):
    """Tensors of odd shapes, dtypes and values (NaN, +-inf, huge, tiny, masked classes)."""
    if shapes is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    else:
        shape = draw(st.sampled_from(shapes))
    dtype = draw(st.sampled_from(dtypes))
    fill = draw(st.sampled_from(FILLS))
    seed = draw(st.integers(0, 2**16))
    values = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if fill == "huge":
        values = values * 1e30
    elif fill == "tiny":
        values = values * 1e-30
    elif fill == "zero":
        values = torch.zeros(shape, dtype=torch.float64)
    elif fill in ("nan", "inf", "-inf") and values.numel():
        values.view(-1)[draw(st.integers(0, values.numel() - 1))] = float(fill)
    elif fill == "masked" and values.dim() == 2 and values.shape[1] > 1:
        values[:, 0] = float("-inf")
    if dtype == torch.bool:
        return values > 0
    if not dtype.is_floating_point:
        return torch.nan_to_num(values, nan=0.0, posinf=5.0, neginf=-5.0).clamp(-9, 9).to(dtype)
    return values.to(dtype)


def tensor_or_other(shapes=None):
    return st.one_of(tensors(shapes), odd_objects, st.just(np.zeros((3, 4))))


targets_like = st.one_of(
    tensors(shapes=[(3,), (4,), (3, 1), ()], dtypes=(torch.int64, torch.int32, torch.float32)),
    st.lists(st.integers(-2, 6), min_size=3, max_size=3).map(torch.tensor),
    odd_objects,
)


# --------------------------------------------------------------------------- invariants
def finite_number(result) -> None:
    value = float(result)
    assert not math.isnan(value)


def nonnegative_loss(result) -> None:
    assert isinstance(result, torch.Tensor)
    assert not bool(torch.isnan(result).any())
    assert bool((result >= -1e-5 * (1 + result.abs())).all())


def built(result) -> None:
    assert result is not None


def awd_built(module) -> None:
    assert torch.isfinite(module.h0).all()


# --------------------------------------------------------------------------- fixed inputs
def _student():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))


_TEACHER = _student()
_TEACHER.train()
_TEACHER[2].eval()  # a submodule with its own mode: must stay so
_LOGITS = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
_TARGETS = torch.tensor([0, 3, 1])
_FEATURE = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(2))


def _metric(**kwargs):
    arguments = {
        "num_units": 2,
        "label_names": ["-", "red", "round"],
        "label_categories": ["", "color", "shape"],
        "quantile": 0.8,
    }
    arguments.update(kwargs)
    return NetworkDissection(**arguments)


def _dissection_update(activations):
    metric = _metric()
    metric.update(activations)
    return metric


def _dissection_tally(labels):
    metric = _metric()
    metric.set_thresholds(torch.zeros(2))
    metric.update(torch.rand(3, 2, 4, 4), labels)
    return metric.intersection


@dataclass
class Row:
    entry: str
    call: Callable
    names: tuple[str, ...]
    values: st.SearchStrategy
    invariant: Callable = built
    fixed: tuple = field(default_factory=tuple)


ROWS = [
    # pure losses
    Row(
        "dkd_loss",
        lambda v: dkd_loss(v, _LOGITS, _TARGETS),
        ("student_logits",),
        tensor_or_other(),
        nonnegative_loss,
    ),
    Row(
        "dkd_loss",
        lambda v: dkd_loss(_LOGITS, _LOGITS.flip(0), v),
        ("targets",),
        targets_like,
        nonnegative_loss,
    ),
    Row(
        "dkd_loss",
        lambda v: dkd_loss(_LOGITS, _LOGITS.flip(0), _TARGETS, beta=v),
        ("beta",),
        anything,
        nonnegative_loss,
    ),
    Row(
        "rkd_loss",
        lambda v: rkd_loss(v, _LOGITS),
        ("student_embedding", "teacher_embedding"),
        tensor_or_other(),
        nonnegative_loss,
    ),
    Row(
        "pkt_loss",
        lambda v: pkt_loss(_LOGITS, v),
        ("student_embedding", "teacher_embedding"),
        tensor_or_other(),
        finite_number,
    ),
    Row(
        "pkt_loss",
        lambda v: pkt_loss(_LOGITS, _LOGITS.flip(0), eps=v),
        ("eps",),
        anything,
        finite_number,
    ),
    Row(
        "kd_loss",
        lambda v: kd_loss(v, _LOGITS),
        ("student_logits",),
        tensor_or_other(),
        nonnegative_loss,
    ),
    Row(
        "kd_loss",
        lambda v: kd_loss(_LOGITS, v),
        ("teacher_logits",),
        tensor_or_other(),
        nonnegative_loss,
    ),
    Row(
        "kd_loss",
        lambda v: kd_loss(v, v.clone() if isinstance(v, torch.Tensor) else v),
        ("student_logits", "teacher_logits"),
        tensor_or_other([(0, 4), (3, 1), (2, 4), (1, 0)]),
        nonnegative_loss,
    ),
    Row(
        "kd_loss",
        lambda v: kd_loss(_LOGITS, _LOGITS.flip(0), v),
        ("temperature",),
        anything,
        nonnegative_loss,
    ),
    Row(
        "kd_loss",
        lambda v: kd_loss(_LOGITS, _LOGITS, reduction=v),
        ("reduction",),
        anything,
        nonnegative_loss,
    ),
    Row(
        "distillation_loss",
        lambda v: distillation_loss(_LOGITS, _LOGITS.flip(0), v),
        ("targets",),
        targets_like,
        finite_number,
    ),
    Row(
        "distillation_loss",
        lambda v: distillation_loss(_LOGITS, _LOGITS, _TARGETS, alpha=v),
        ("alpha",),
        anything,
        finite_number,
    ),
    Row(
        "distillation_loss",
        lambda v: distillation_loss(v, _LOGITS, _TARGETS),
        ("student_logits",),
        tensor_or_other(),
        finite_number,
    ),
    Row(
        "label_smoothing_loss",
        lambda v: label_smoothing_loss(v, _TARGETS, 0.1),
        ("logits",),
        tensor_or_other(),
        finite_number,
    ),
    Row(
        "label_smoothing_loss",
        lambda v: label_smoothing_loss(_LOGITS, v, 0.1),
        ("targets",),
        targets_like,
        finite_number,
    ),
    Row(
        "label_smoothing_loss",
        lambda v: label_smoothing_loss(_LOGITS, _TARGETS, v),
        ("smoothing",),
        anything,
        finite_number,
    ),
    Row(
        "attention_transfer_loss",
        lambda v: attention_transfer_loss(v, _FEATURE, variant="code"),
        ("student_feature",),
        tensor_or_other([(3, 2, 4, 4), (3, 1, 2, 2), (0, 2, 4, 4), (3, 2, 0, 4), (3, 4)]),
        nonnegative_loss,
    ),
    Row(
        "attention_transfer_loss",
        lambda v: attention_transfer_loss(_FEATURE, _FEATURE.flip(0), variant="paper", p=v),
        ("p",),
        anything,
        nonnegative_loss,
    ),
    Row(
        "attention_transfer_loss",
        lambda v: attention_transfer_loss(_FEATURE, _FEATURE, variant=v),
        ("variant",),
        anything,
        nonnegative_loss,
    ),
    # DistillationModule and KnowledgeDistillation construction
    *[
        Row(
            "DistillationModule",
            lambda v, a=arg: DistillationModule(_student(), _TEACHER, **{a: v}),
            (arg,),
            anything,
        )
        for arg in (
            "temperature",
            "alpha",
            "label_smoothing",
            "lr",
            "weight_decay",
            "momentum",
            "optimizer",
            "cache_teacher",
            "keep_teacher_in_checkpoint",
            "example_input",
        )
    ],
    Row(
        "DistillationModule",
        lambda v: DistillationModule(_student(), _TEACHER, features=v),
        ("features", "student_layer", "teacher_layer", "loss", "weight", "variant", "p"),
        st.one_of(
            anything,
            st.lists(
                st.one_of(
                    st.tuples(st.sampled_from(["1", "x", ""]), st.sampled_from(["3", "9"])),
                    anything,
                ),
                max_size=2,
            ),
        ),
    ),
    Row(
        "DistillationModule",
        lambda v: DistillationModule(v, _TEACHER),
        ("student", "teacher"),
        odd_objects,
    ),
    Row(
        "DistillationModule",
        lambda v: DistillationModule(_student(), v),
        ("teacher", "alpha"),
        odd_objects,
    ),
    *[
        Row(
            "KnowledgeDistillation",
            lambda v, a=arg: KnowledgeDistillation(_TEACHER, **{a: v}),
            (arg,),
            anything,
        )
        for arg in ("temperature", "alpha", "label_smoothing", "logits_from", "targets_from")
    ],
    Row("KnowledgeDistillation", lambda v: KnowledgeDistillation(v), ("teacher",), odd_objects),
    # NetworkDissection arguments and update inputs
    *[
        Row("NetworkDissection", lambda v, a=arg: _metric(**{a: v}), (arg,), anything)
        for arg in (
            "num_units",
            "quantile",
            "iou_threshold",
            "activation_side",
            "histogram_range",
            "histogram_resolution",
            "label_names",
            "label_categories",
            "categories",
            "cache_bytes",
        )
    ],
    Row(
        "NetworkDissection.update",
        _dissection_update,
        ("activations",),
        tensor_or_other([(3, 2, 4, 4), (3, 3, 4, 4), (0, 2, 4, 4), (3, 2), (3, 2, 4)]),
    ),
    Row(
        "NetworkDissection.update",
        _dissection_tally,
        ("labels",),
        st.one_of(
            tensors(
                [(3, 1, 4, 4), (3, 4, 4), (2, 1, 4, 4), (3, 1, 2, 2)],
                dtypes=(torch.int64, torch.uint8, torch.float32, torch.bool),
            ),
            odd_objects,
        ),
    ),
    # AWDModule arguments
    *[
        Row(
            "AWDModule", lambda v, a=arg: AWDModule(_TEACHER, **{a: v}), (arg,), anything, awd_built
        )
        for arg in (
            "wavelet",
            "levels",
            "mode",
            "dim",
            "init_noise",
            "seed",
            "attribution",
            "target",
            "reconstruction_weight",
            "sparsity_weight",
            "attribution_weight",
            "validity_weight",
            "validity_weights",
            "lr",
            "n_steps",
            "keep_teacher_in_checkpoint",
        )
    ],
    Row("AWDModule", lambda v: AWDModule(v), ("teacher",), odd_objects, awd_built),
]


# --------------------------------------------------------------------------- the harness
def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype, tuple(value.shape), value.detach().cpu().view(-1).clone())
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, list):
        return ("list", [_snapshot(v) for v in value])
    return ("other", value)


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "tensor":
        x, y = a[3], b[3]
        if a[1:3] != b[1:3]:
            return False
        if x.is_floating_point():
            return bool(((x == y) | (torch.isnan(x) & torch.isnan(y))).all())
        return torch.equal(x, y)
    if a[0] == "array":
        return np.array_equal(a[1], b[1], equal_nan=True)
    if a[0] == "list":
        return len(a[1]) == len(b[1]) and all(_same(x, y) for x, y in zip(a[1], b[1]))
    return True


def _teacher_state():
    return (
        [m.training for m in _TEACHER.modules()],
        [p.requires_grad for p in _TEACHER.parameters()],
        [p.detach().clone() for p in _TEACHER.parameters()],
    )


def _check(row: Row, value) -> None:
    before, teacher_before = _snapshot(value), _teacher_state()
    fixed_before = [t.clone() for t in (_LOGITS, _TARGETS, _FEATURE)]
    try:
        result = row.call(value)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message for name in row.names), (
            f"{row.entry}: the message does not name {row.names}: {message!r}"
        )
    else:
        row.invariant(result)
    assert _same(before, _snapshot(value)), f"{row.entry} changed its input {value!r}"
    modes, flags, weights = _teacher_state()
    assert (modes, flags) == teacher_before[:2], f"{row.entry} changed the teacher's modes/flags"
    assert all(torch.equal(a, b) for a, b in zip(weights, teacher_before[2]))
    assert all(torch.equal(a, b) for a, b in zip(fixed_before, (_LOGITS, _TARGETS, _FEATURE)))


def _row_id(row: Row) -> str:
    return f"{row.entry}-{row.names[0]}"


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_bad_input_is_refused_clearly_or_answered_correctly(row):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples in every CI run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(value=row.values)
    def run(value):
        _check(row, value)

    run()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_check_finite_survives_an_overflowing_sum(dtype):
    from lightning_distill._validation import check_finite

    large = torch.full((8,), torch.finfo(dtype).max / 2, dtype=dtype)
    check_finite("x", large)  # finite values whose sum overflows are still finite
    check_finite("x", torch.cat([large, -large]))
    for bad in (math.nan, math.inf, -math.inf):
        for values in (large, torch.zeros(8, dtype=dtype)):
            with pytest.raises(ValueError, match="x must be finite"):
                check_finite("x", torch.cat([values, torch.tensor([bad], dtype=dtype)]))
