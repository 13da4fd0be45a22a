"""Legitimate but unusual inputs to the distillation losses and module: tensors on two devices,
logits per position (segmentation maps, token sequences), model outputs that hold the logits
(a tuple, a dict, a Hugging Face style object) and ignore_index targets."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, KnowledgeDistillation
from lightning_distill.kd.temperature import kd_loss_at
from lightning_distill.losses import (
    attention_transfer_loss,
    distillation_loss,
    dkd_loss,
    hint_loss,
    kd_loss,
    label_smoothing_loss,
    pkt_loss,
    rkd_loss,
)
from tests.helpers import PlainClassifier, quiet_trainer

# The meta device stands in for an accelerator: a second device that exists on every machine.
# Without the device check torch failed deep in the computation (on CUDA with "Expected all
# tensors to be on the same device", here at the first read of a value).
_HERE = torch.randn(4, 3)
_THERE = torch.randn(4, 3, device="meta")
_LABELS = torch.tensor([0, 1, 2, 0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kd_loss(_HERE, _THERE), r"teacher_logits must be on the device of student_logits \(cpu\); got meta"),
        (lambda: kd_loss(_THERE, _HERE), r"teacher_logits must be on the device of student_logits \(meta\); got cpu"),
        (lambda: dkd_loss(_HERE, _THERE, _LABELS), "teacher_logits must be on the device"),
        (lambda: distillation_loss(_HERE, _THERE, _LABELS), "teacher_logits must be on the device"),
        (lambda: kd_loss_at(_HERE, _THERE, torch.tensor(2.0)), "teacher_logits must be on the device"),
        (lambda: distillation_loss(_HERE, _HERE.clone(), _LABELS.to("meta")), r"targets must be on the device of student_logits \(cpu\); got meta"),
        (lambda: label_smoothing_loss(_HERE, _LABELS.to("meta"), 0.1), r"targets must be on the device of logits \(cpu\); got meta"),
        (lambda: rkd_loss(_HERE, _THERE), "teacher_embedding must be on the device of student_embedding"),
        (lambda: pkt_loss(_HERE, _THERE), "teacher_embedding must be on the device of student_embedding"),
        (
            lambda: attention_transfer_loss(
                torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4, device="meta"), variant="code"
            ),
            "teacher_feature must be on the device of student_feature",
        ),
        (
            lambda: hint_loss(torch.randn(2, 3), torch.randn(2, 3, device="meta"), nn.Identity()),
            "teacher_feature must be on the device of student_feature",
        ),
    ],
)  # fmt: skip
def test_tensors_on_two_devices_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message + r".*\.to\("):
        call()


def _kl_per_position(student, teacher, temperature):
    """T^2 KL(softmax(t / T) || softmax(s / T)) over the class axis 1, at every position."""
    log_s = torch.log_softmax(student.double() / temperature, dim=1)
    log_t = torch.log_softmax(teacher.double() / temperature, dim=1)
    return temperature**2 * (log_t.exp() * (log_t - log_s)).sum(dim=1)


@pytest.mark.parametrize("temperature", [0.5, 3.0, 40.0])
def test_logits_per_position_are_refused_with_a_fold_that_averages_over_positions(temperature):
    torch.manual_seed(0)
    student, teacher = torch.randn(3, 5, 4, 2), torch.randn(3, 5, 4, 2) * 3
    targets = torch.randint(0, 5, (3, 4, 2))
    with pytest.raises(ValueError, match=r"got shape \(3, 5, 4, 2\): one distribution per posi"):
        kd_loss(student, teacher, temperature)
    with pytest.raises(ValueError, match=r"movedim\(1, -1\)\.flatten\(0, -2\)"):
        dkd_loss(student, teacher, targets)
    with pytest.raises(ValueError, match=r"targets\.flatten\(\)"):
        label_smoothing_loss(student, targets, 0.1)
    # the fold the message gives: every pixel of every image counts once in the mean
    fold = lambda logits: logits.movedim(1, -1).flatten(0, -2)  # noqa: E731
    folded = kd_loss(fold(student), fold(teacher), temperature)
    expected = _kl_per_position(student, teacher, temperature).mean()
    torch.testing.assert_close(folded.double(), expected, rtol=1e-5, atol=1e-6)
    ce = label_smoothing_loss(fold(student), targets.flatten(), 0.0)
    per_pixel = -torch.log_softmax(student.double(), 1).gather(1, targets.unsqueeze(1))
    torch.testing.assert_close(ce.double(), per_pixel.mean(), rtol=1e-5, atol=1e-6)
    # [batch, time, classes]: classes already last
    sequence, sequence_teacher = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match=r"logits\.flatten\(0, -2\) for \[batch, time, classes\]"):
        kd_loss(sequence, sequence_teacher, temperature)
    folded = kd_loss(sequence.flatten(0, -2), sequence_teacher.flatten(0, -2), temperature)
    expected = _kl_per_position(
        sequence.transpose(1, 2), sequence_teacher.transpose(1, 2), temperature
    )
    torch.testing.assert_close(folded.double(), expected.mean(), rtol=1e-5, atol=1e-6)


def test_one_logit_per_sample_is_refused_with_the_two_logits_to_return():
    z = torch.randn(6)
    with pytest.raises(ValueError, match=r"got shape \(6,\): a single logit per sample"):
        kd_loss(z, z.flip(0))
    # the remedy's two logits give the sigmoid's probabilities
    two = torch.stack([-z / 2, z / 2], dim=1)
    torch.testing.assert_close(two.softmax(1)[:, 1], torch.sigmoid(z))


class _Output:
    """A Hugging Face style output: the logits in an attribute."""

    def __init__(self, logits):
        self.logits = logits


class _Teacher(nn.Module):
    def __init__(self, form):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.form = form

    def forward(self, x):
        z = self.linear(x)
        return {"tuple": (z, x), "dict": {"logits": z}, "object": _Output(z)}[self.form]


@pytest.mark.parametrize(
    ("form", "where"),
    [("tuple", "its first element"), ("dict", "its 'logits' entry"), ("object", "its .logits")],
)
def test_a_teacher_output_holding_the_logits_is_refused_naming_where_they_are(form, where):
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randint(0, 3, (8,))), batch_size=4)
    message = r"teacher output must be a tensor of logits; got \w+: wrap the model .*" + where
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match=message):
            quiet_trainer(max_epochs=1).fit(
                DistillationModule(nn.Linear(4, 3), _Teacher(form)), loader
            )
        with pytest.raises(TypeError, match=message):
            quiet_trainer(max_epochs=1, callbacks=[KnowledgeDistillation(_Teacher(form))]).fit(
                PlainClassifier(nn.Linear(4, 3)), loader
            )
    # the loss named by its argument for a student output
    with pytest.raises(TypeError, match="student_logits must be a torch.Tensor; got .*" + where):
        kd_loss(_Teacher(form)(torch.randn(2, 4)), torch.randn(2, 3))


def test_ignore_index_targets_are_refused_saying_they_are_not_skipped():
    torch.manual_seed(0)
    logits, targets = torch.randn(5, 3), torch.tensor([0, -100, 2, 1, -100])
    message = r"got values in \[-100, 2\] \(-100: an ignore_index.*not skipped here.*alpha=1\.0"
    for call in (
        lambda: label_smoothing_loss(logits, targets, 0.1),
        lambda: distillation_loss(logits, logits.flip(0), targets, label_smoothing=0.1),
        lambda: dkd_loss(logits, logits.flip(0), targets),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    # a label above the range says nothing of an ignore_index
    with pytest.raises(ValueError, match=r"got values in \[0, 7\]\.$"):
        label_smoothing_loss(logits, torch.tensor([0, 7, 2, 1, 0]), 0.1)
