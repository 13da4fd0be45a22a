"""Feature and relational distillation methods: FT, CRD, SSKD, RKD, PKT, and decoupled KD.

Layout: the methods with trainable parts or state are small ``nn.Module`` s at the top
(:class:`FactorTransfer`, :class:`CRD`, :class:`SSKD`, and thin :class:`RKD`/:class:`PKT`
wrappers), each usable on its own or through
``FeatureDistillation(student_layer, teacher_layer, loss="ft" | "crd" | "sskd" | "rkd" | "pkt")``;
the pure loss functions they compute are at the bottom (:func:`dkd_loss`, :func:`rkd_loss`,
:func:`pkt_loss`, :func:`factor_transfer_loss`, :func:`crd_contrast_loss`,
:func:`sskd_selection`), each a formula on tensors without state.

Every method module is called as ``method(student_feature, teacher_feature, context)`` and returns
a dict of named loss terms (already multiplied by the method's own weights); the training loss
takes their sum, and :class:`~lightning_distill.DistillationModule` logs each as
``train/loss_feature/<name>``. ``context`` is a :class:`FeatureContext`: what a method needs
beyond the two features (the batch's sample index for CRD, forward functions for SSKD's rotated
copies).

Two methods have a stage that runs before the student trains:

- FT's *paraphraser* (an autoencoder of the teacher's feature) and
- SSKD's *teacher self-supervision head* (a projection head on the teacher's feature, trained to
  recognise which original image a rotated copy came from).

Each method has ``pretrain(inputs, teacher_feature, epochs=None)``; under the Trainer,
:class:`~lightning_distill.DistillationModule` runs it in ``on_train_start`` over the fit's own
training dataloader, once: the method's ``pretrained`` buffer goes into checkpoints, so a resumed
fit skips the stage, and a method the user pretrained by hand before ``fit`` is not trained again.
Each of the stage's epochs reads as many batches as the fit's epochs do
(``trainer.num_training_batches``, which ``limit_train_batches``, ``overfit_batches`` and
``fast_dev_run`` set), and under ``fast_dev_run`` the stage runs one epoch (see
:meth:`LoaderInputs.of_trainer`).
The teacher stays frozen during the stage; the stage's parameters are then frozen too and are not
optimised with the student (they are in checkpoints).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_distill._batch import index_problem
from lightning_distill._precision import autocast_off as _autocast_off
from lightning_distill._validation import (
    check_finite_deferred,
    check_float_tensor,
    check_integer,
    check_real,
    check_same_device,
    describe,
    fail,
    refuse_fixed_setting,
    settle_value_checks,
    torch_assigns,
    value_check,
)
from lightning_distill.kd.losses import (
    _FLOAT32_TEMPERATURE,
    _MAX_TEMPERATURE,
    _MIN_TEMPERATURE,
    _check_not_empty,
    _check_pair,
    _check_targets,
    _check_temperature,
    _float_logits,
    _kd_loss,
)

__all__ = [
    "CRD",
    "FEATURE_METHODS",
    "PKT",
    "RKD",
    "SSKD",
    "FactorTransfer",
    "FeatureContext",
    "FeatureMethod",
    "LoaderInputs",
    "build_feature_method",
    "crd_contrast_loss",
    "dkd_loss",
    "dkd_warmup",
    "factor_transfer_loss",
    "method_needs_shapes",
    "pkt_loss",
    "rkd_loss",
    "rotate_batch",
    "sskd_selection",
]


class FeatureContext(NamedTuple):
    """What a feature method may need beyond the student's and teacher's features.

    Attributes
    ----------
    inputs : Tensor
        The batch's inputs.
    targets : Tensor or None
        Class indices.
    index : Tensor or None
        Each sample's position in the dataset (batches ``(inputs, targets, index)``).
    run_student, run_teacher : callable or None
        ``inputs -> (logits, feature)``: a forward pass of the student (with gradient) or of the
        frozen teacher (without), returning the logits and the feature of the method's layer.
    targets_checked : bool
        Whether the step checked the targets' range against its logits already (so a method
        does not check them again).
    """

    inputs: Tensor | None = None
    targets: Tensor | None = None
    index: Tensor | None = None
    run_student: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
    run_teacher: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
    targets_checked: bool = False


class FeatureMethod(nn.Module):
    """Base class of the feature methods: ``forward(student_feature, teacher_feature, context)``.

    Subclasses return a dict ``{term name: scalar tensor}``; the loss is the sum of the terms.
    ``student_parameters()`` lists what is optimised with the student (a pretrained stage's
    parameters are not); ``pretrain`` runs the method's first stage, when it has one.
    """

    #: whether ``pretrain`` must run before the student trains
    needs_pretraining: bool = False
    #: whether the batches must carry each sample's index
    needs_index: bool = False
    #: the settings checked when set after construction: name -> the constructor's check
    checked_on_set: ClassVar[dict[str, Callable]] = {}

    def __setattr__(self, name: str, value) -> None:
        # a setting set after construction is checked as the constructor checks it (a negative
        # weight or temperature, a momentum above 1, would train the student wrong silently); a
        # learned one, an nn.Parameter, is torch's to register, as any parameter
        check = self.checked_on_set.get(name)
        # a learned setting (an nn.Parameter) or a registered buffer is torch's to assign
        if check is not None and not torch_assigns(self, name, value):
            value = check(value)
        super().__setattr__(name, value)

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters trained together with the student."""
        return list(self.parameters())

    def pretrain(
        self,
        inputs: Iterable[Tensor],
        teacher_feature: Callable[[Tensor], Tensor],
        epochs: int | None = None,
    ) -> list[float]:
        """Run the method's first stage; methods without one return ``[]``."""
        return []

    @property
    def is_pretrained(self) -> bool:
        flag = getattr(self, "pretrained", None)
        return True if flag is None else bool(flag)


# =============================================================================== modules
class RKD(FeatureMethod):
    """Relational KD (Park et al., CVPR 2019) as a feature method; see :func:`rkd_loss`.

    Terms: ``rkd_distance`` and ``rkd_angle`` (weighted).
    """

    # a negative weight would push the student's relations away from the teacher's
    checked_on_set: ClassVar[dict[str, Callable]] = {
        name: functools.partial(check_real, name, minimum=0.0)
        for name in ("distance_weight", "angle_weight")
    }

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0) -> None:
        super().__init__()
        self.distance_weight = check_real("distance_weight", distance_weight, minimum=0.0)
        self.angle_weight = check_real("angle_weight", angle_weight, minimum=0.0)

    def forward(self, student_feature, teacher_feature, context=None) -> dict[str, Tensor]:
        distance, angle = _rkd_terms(student_feature, teacher_feature, self.angle_weight > 0)
        return {
            "rkd_distance": self.distance_weight * distance,
            "rkd_angle": self.angle_weight * angle,
        }


class PKT(FeatureMethod):
    """Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018); see :func:`pkt_loss`."""

    checked_on_set: ClassVar[dict[str, Callable]] = {
        "eps": functools.partial(
            check_real, "eps", minimum=0.0, maximum=1.0, exclusive_minimum=True
        )
    }

    def __init__(self, eps: float = 1e-7) -> None:
        super().__init__()
        self.eps = eps  # checked by __setattr__

    def forward(self, student_feature, teacher_feature, context=None) -> dict[str, Tensor]:
        return {"pkt": pkt_loss(student_feature, teacher_feature, self.eps)}


class FactorTransfer(FeatureMethod):
    r"""Factor transfer (Kim et al., NeurIPS 2018).

    A *paraphraser* (three 3x3 convolutions with LeakyReLU(0.1) down to ``rate`` times the
    teacher's channels, and three transposed ones back) is first trained to reconstruct the
    teacher's feature (L1 reconstruction, as in the authors' code); its encoder output is the
    teacher's *factor*. A *translator* (three 3x3 convolutions) maps the student's feature to a
    factor of the same channel count and is trained with the student on
    :func:`factor_transfer_loss`, the L1 distance of the L2-normalised factors.

    The paraphraser stage: :meth:`pretrain` (``paraphraser_epochs`` epochs of SGD, lr 0.1,
    momentum 0.9, weight decay 5e-4, the authors' settings), run by
    :class:`~lightning_distill.DistillationModule` in ``on_train_start`` when
    ``pretrained`` is False, or by the user before ``fit``. Afterwards the paraphraser is frozen.

    Parameters
    ----------
    student_channels, teacher_channels : int
        Channels of the ``[B, C, H, W]`` features.
    rate : float, default=0.5
        Paraphrase rate k: factor channels = ``round(rate * teacher_channels)``.
    paraphraser_epochs : int, default=5
    paraphraser_lr : float, default=0.1

    Terms: ``ft``. The authors weight it by beta = 500 (pass ``weight=500.0``).

    RepDistiller's ``FT`` differs from the authors' code: its paraphraser is trained on a mean
    squared reconstruction (30 epochs by default), its loss compares the factors' normalised
    channel means of squares (an attention map of each factor, as its ``AT``) rather than the
    whole normalised factors, and it weights the loss by 200. The authors' paraphraser script
    loops over ``range(0, epochs + 1)``, so its default of 5 epochs trains 6.
    """

    needs_pretraining = True
    # fewer than 0 epochs would leave the paraphraser untrained and marked pretrained
    checked_on_set: ClassVar[dict[str, Callable]] = {
        "paraphraser_epochs": functools.partial(check_integer, "paraphraser_epochs", minimum=0),
        "paraphraser_lr": functools.partial(
            check_real, "paraphraser_lr", minimum=0.0, exclusive_minimum=True
        ),
    }

    def __init__(
        self,
        student_channels: int,
        teacher_channels: int,
        rate: float = 0.5,
        paraphraser_epochs: int = 5,
        paraphraser_lr: float = 0.1,
    ) -> None:
        super().__init__()
        student_channels = check_integer("student_channels", student_channels, minimum=1)
        teacher_channels = check_integer("teacher_channels", teacher_channels, minimum=1)
        rate = check_real("rate", rate, minimum=0.0, exclusive_minimum=True)
        self.paraphraser_epochs = check_integer("paraphraser_epochs", paraphraser_epochs, minimum=0)
        self.paraphraser_lr = check_real(
            "paraphraser_lr", paraphraser_lr, minimum=0.0, exclusive_minimum=True
        )
        factor = max(1, round(rate * teacher_channels))
        self.paraphraser_encoder = _conv_stack(
            [teacher_channels, teacher_channels, factor, factor], nn.Conv2d
        )
        self.paraphraser_decoder = _conv_stack(
            [factor, factor, teacher_channels, teacher_channels], nn.ConvTranspose2d
        )
        self.translator = _conv_stack([student_channels, student_channels, factor, factor])
        # Frozen except inside pretrain(): never optimised with the student, and DDP (which
        # wraps the module before the stage runs) must not wait for their gradients.
        self.paraphraser_encoder.requires_grad_(False)
        self.paraphraser_decoder.requires_grad_(False)
        self.register_buffer("pretrained", torch.tensor(False))

    def student_parameters(self) -> list[nn.Parameter]:
        return list(self.translator.parameters())

    def pretrain(self, inputs, teacher_feature, epochs=None) -> list[float]:
        """Train the paraphraser to reconstruct the teacher's feature; returns epoch losses."""
        epochs = (
            self.paraphraser_epochs
            if epochs is None
            else check_integer("epochs", epochs, minimum=0)
        )
        params = [*self.paraphraser_encoder.parameters(), *self.paraphraser_decoder.parameters()]
        optimizer = torch.optim.SGD(params, lr=self.paraphraser_lr, momentum=0.9, weight_decay=5e-4)

        def step(x: Tensor) -> Tensor:
            with torch.no_grad():
                feature = _float_logits(teacher_feature(x))
            _check_image_feature("teacher_feature", feature)
            factor = _through(self.paraphraser_encoder, feature)
            return F.l1_loss(_through(self.paraphraser_decoder, factor), feature)

        history = _train_stage(params, optimizer, step, inputs, epochs)
        self.pretrained.fill_(True)
        return history

    def forward(self, student_feature, teacher_feature, context=None) -> dict[str, Tensor]:
        _check_pair_batch(student_feature, teacher_feature)
        _check_image_feature("student_feature", student_feature)
        _check_image_feature("teacher_feature", teacher_feature)
        _check_width("student_feature", student_feature.shape[1], self.translator[0].in_channels)
        _check_width(
            "teacher_feature", teacher_feature.shape[1], self.paraphraser_encoder[0].in_channels
        )
        # read with the step's other value checks (one host sync; see one_sync_per_step)
        check_finite_deferred("student_feature", student_feature)
        check_finite_deferred("teacher_feature", teacher_feature)
        with torch.no_grad():
            teacher_factor = _through(self.paraphraser_encoder, teacher_feature)
        student_factor = _through(self.translator, student_feature)
        return {"ft": factor_transfer_loss(student_factor, teacher_factor)}


#: CRD's settings checked when set after construction, with the constructor's checks.
_CRD_CHECKED_ON_SET = {
    "temperature": lambda value: check_real(
        "temperature", value, minimum=0.0, exclusive_minimum=True
    ),
    "momentum": lambda value: check_real("momentum", value, minimum=0.0, maximum=1.0),
    "num_negatives": lambda value: check_integer("num_negatives", value, minimum=1),
    "seed": lambda value: check_integer("seed", value, minimum=0),
}


class CRD(FeatureMethod):
    r"""Contrastive representation distillation (Tian et al., ICLR 2020).

    Linear embedding heads (``embed_dim``, L2-normalised) on the flattened student and teacher
    features; two memory banks hold one embedding per training sample (the student's and the
    teacher's), updated with momentum after each step. Each sample is contrasted with its own
    bank entry (the positive) and ``num_negatives`` entries drawn uniformly from the bank, with
    the NCE loss of eq. (18) (:func:`crd_contrast_loss`) in both directions: the teacher's
    embedding against the student bank and the student's against the teacher bank.

    The negatives are drawn from the whole bank with replacement, so they may include the
    sample's own class (rarely its own entry). This is the paper's uniform noise distribution;
    the authors' CIFAR pipeline (RepDistiller's ``mode='exact'``, also mdistiller's) instead
    draws them from the *other classes* only, without replacement, which needs the labels of
    the whole training set. The loss formula is the same.

    Batches must carry each sample's index ``(inputs, targets, index)`` with index in
    ``[0, num_samples)``.

    State and DDP: the banks, the normalising constants Z and a step counter are buffers, so they
    travel in checkpoints (``2 * num_samples * embed_dim`` floats). Under
    ``torch.distributed`` every process keeps a full copy: the embeddings and indices of the whole
    global batch are gathered (detached) and every process applies the same update, and the
    negatives are drawn from a generator seeded by ``(seed, step)`` for the whole global batch,
    so the banks stay identical across processes and equal to those of one process that sees the
    same global batches.

    Parameters
    ----------
    student_dim, teacher_dim : int
        Sizes of the flattened features.
    num_samples : int
        Size of the training set (rows of each bank); at least the batch size.
    embed_dim : int, default=128
    num_negatives : int, default=16384
        Negatives per sample (drawn with replacement, so it may exceed ``num_samples``).
    temperature : float, default=0.07
    momentum : float, default=0.5
    seed : int, default=0
        Seeds the banks' initial values and the negatives.

    Terms: ``crd``. The authors weight it by 0.8.
    """

    needs_index = True
    # a negative temperature flips every similarity, a momentum above 1 pushes the banks away
    # from the embeddings
    checked_on_set: ClassVar[dict[str, Callable]] = _CRD_CHECKED_ON_SET

    def __setattr__(self, name: str, value) -> None:
        # the memory banks hold one row per sample: a num_samples set later would no longer be
        # their size (indices checked against the one, rows drawn from the other)
        refuse_fixed_setting(
            self, name, value, ("num_samples",), "the memory banks hold one row per sample"
        )
        super().__setattr__(name, value)

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_samples: int,
        embed_dim: int = 128,
        num_negatives: int = 16384,
        temperature: float = 0.07,
        momentum: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        student_dim = check_integer("student_dim", student_dim, minimum=1)
        teacher_dim = check_integer("teacher_dim", teacher_dim, minimum=1)
        self.num_samples = check_integer("num_samples", num_samples, minimum=1)
        embed_dim = check_integer("embed_dim", embed_dim, minimum=1)
        self.num_negatives = check_integer("num_negatives", num_negatives, minimum=1)
        self.temperature = check_real(
            "temperature", temperature, minimum=0.0, exclusive_minimum=True
        )
        self.momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0)
        self.seed = check_integer("seed", seed, minimum=0)
        self.embed_student = nn.Linear(student_dim, embed_dim)
        self.embed_teacher = nn.Linear(teacher_dim, embed_dim)
        generator = torch.Generator().manual_seed(self.seed)
        bound = 1.0 / math.sqrt(embed_dim / 3)
        for name in ("memory_student", "memory_teacher"):
            bank = torch.rand(self.num_samples, embed_dim, generator=generator) * 2 * bound - bound
            self.register_buffer(name, bank)
        # Z of the student and teacher sides, fixed on the first step; -1 means not yet set
        self.register_buffer("normalizers", torch.full((2,), -1.0, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        # bank rows written by this process's training steps, and rows written (host side,
        # counted when the banks are updated): an index that counts positions within the
        # batch writes a few rows over and over
        self._written = None
        self._rows_seen = 0
        self._coverage_checked = False

    def _check_coverage(self, values: list[int]) -> None:
        """Warn once when, after as many rows as the bank has, at most half its rows were
        written: the index is not the sample's (a position within the batch, say), and the
        samples share bank rows (each one's positive mixes several samples)."""
        if self._coverage_checked:
            return
        if self._written is None:
            self._written = torch.zeros(self.num_samples, dtype=torch.bool)  # on the host
        self._written[torch.tensor(values, dtype=torch.long)] = True
        self._rows_seen += len(values)
        if self._rows_seen < self.num_samples:
            return
        self._coverage_checked = True
        written = int(self._written.sum())
        self._written = None
        if written <= self.num_samples // 2:
            warnings.warn(
                f"CRD wrote {written} of its {self.num_samples} bank rows over the first "
                f"{self._rows_seen} training rows: the batches' index is not each sample's own "
                "(one that counts positions within the batch writes the same few rows every "
                "batch, and samples then share a bank row and its positive). Give each sample "
                "its index in the data set, and num_samples its size.",
                UserWarning,
                stacklevel=2,
            )

    @property
    def bank_bytes(self) -> int:
        """Memory of the two banks in bytes."""
        return self.memory_student.numel() * self.memory_student.element_size() * 2

    def negatives(self, index: Tensor, step: int, global_index: Tensor | None = None) -> Tensor:
        """Bank rows to contrast each sample with: ``[B, 1 + num_negatives]``, column 0 itself.

        One table of negatives is drawn per step for the global batch ``global_index`` (all
        processes; by default ``index``) from a generator seeded by ``(seed, step)``, and its
        rows are dealt to the samples in the order of their indices: a sample gets the same
        negatives however the global batch is split over processes.
        """
        return self._negatives(index, step, global_index)[0]

    def _negatives(
        self, index: Tensor, step: int, global_index: Tensor | None = None
    ) -> tuple[Tensor, list[int]]:
        """:meth:`negatives`, and the global batch's indices as read on the host."""
        global_index = index if global_index is None else global_index
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        drawn = torch.randint(
            0, self.num_samples, (len(global_index), self.num_negatives), generator=generator
        )
        # row of each global sample: its index's rank in the global batch (the indices read
        # from the device once, not one host sync per sample)
        global_cpu = global_index.long().cpu()
        values = global_cpu.tolist()
        # checked here, where the values are read anyway: no host sync of its own
        _check_range(values, self.num_samples)
        row_of_index = {}
        for row, position in enumerate(torch.argsort(global_cpu, stable=True).tolist()):
            row_of_index.setdefault(values[position], []).append(row)
        own = values if global_index is index else index.long().cpu().tolist()
        rows = [row_of_index[i].pop(0) for i in own]
        drawn = drawn[rows].to(index.device)
        return torch.cat([index.long().unsqueeze(1), drawn], dim=1), values

    def forward(self, student_feature, teacher_feature, context=None) -> dict[str, Tensor]:
        _check_pair_batch(student_feature, teacher_feature)
        _check_width("student_feature", student_feature[0].numel(), self.embed_student.in_features)
        _check_width("teacher_feature", teacher_feature[0].numel(), self.embed_teacher.in_features)
        batch = student_feature.shape[0]
        if batch > self.num_samples:
            fail(
                "num_samples",
                f"at least the batch size {batch} (the bank's rows)",
                self.num_samples,
            )
        index = _check_index(None if context is None else context.index, self.num_samples)
        if index.shape[0] != batch:
            fail("index", f"one entry per sample ({batch})", tuple(index.shape))
        check_finite_deferred("student_feature", student_feature)
        check_finite_deferred("teacher_feature", teacher_feature)
        # the heads run as the Trainer runs the networks; the contrast in float32 (float64
        # kept) with autocast off, as the other losses
        student = _through(self.embed_student, student_feature.flatten(1))
        teacher = _through(self.embed_teacher, teacher_feature.flatten(1))
        with _autocast_off(student):
            return self._contrast(student, teacher, index)

    def _contrast(self, student: Tensor, teacher: Tensor, index: Tensor) -> dict[str, Tensor]:
        student = F.normalize(student, dim=1)
        teacher = F.normalize(teacher, dim=1)
        world = _DistributedBatch(index, student.detach(), teacher.detach())
        step = int(self.steps)
        contrast, rows = self._negatives(index, step, world.index)
        # [B, K + 1, D], in the embeddings' dtype (the banks are bfloat16 under "bf16-true")
        weights_student = self.memory_student[contrast].to(teacher.dtype)
        weights_teacher = self.memory_teacher[contrast].to(student.dtype)
        # the teacher's embedding against the student bank, and the reverse: v.m / T, whose
        # exp (the scores) overflows, or whose positive underflows, at a small temperature
        logits_teacher = (
            torch.bmm(weights_student, teacher.unsqueeze(2)).squeeze(2) / self.temperature
        )
        logits_student = (
            torch.bmm(weights_teacher, student.unsqueeze(2)).squeeze(2) / self.temperature
        )
        z_student, z_teacher = self.normalizers.tolist()  # both in one host read
        first = self.training and min(z_student, z_teacher) < 0
        if first:
            # fixed on the first training step (stored with the banks' update below)
            normalizers = (
                torch.stack(
                    [
                        world.mean(logits_student.detach().double().exp()),
                        world.mean(logits_teacher.detach().double().exp()),
                    ]
                )
                * self.num_samples
            )
            z_student, z_teacher = normalizers.tolist()
        elif z_student < 0:
            # evaluation before any training step: the same rule on this batch, not stored
            z_student = float(logits_student.detach().double().exp().mean()) * self.num_samples
            z_teacher = float(logits_teacher.detach().double().exp().mean()) * self.num_samples
        if any(z == 0 or math.isinf(z) for z in (z_student, z_teacher)):
            # (a NaN Z comes of non-finite features, which their own check names)
            fail(
                "temperature",
                "large enough that the normalising constant Z = num_samples * mean(exp(v.m / "
                "temperature)) is finite and positive in float64 (the similarities v.m are "
                "about 1 in size at most: a temperature of about 0.002 or more)",
                self.temperature,
            )
        # eq. (18) from the logs of the scores P = exp(v.m / T) / Z: the same value, and no
        # overflow of exp nor a positive lost to underflow
        loss = _crd_log_contrast_loss(
            logits_student - math.log(z_student), self.num_samples
        ) + _crd_log_contrast_loss(logits_teacher - math.log(z_teacher), self.num_samples)
        if self.training:
            # the step's value checks (this batch's features and scores, and what the step
            # checked before) are read before the state changes: a refused batch leaves the
            # normalising constants, the banks and the step count as they were
            settle_value_checks()
            with torch.no_grad():
                if first:
                    self.normalizers.copy_(normalizers)
                written = _last_of_each(rows, world.index.device)
                self._update(self.memory_student, world.index, world.student, written)
                self._update(self.memory_teacher, world.index, world.teacher, written)
                self.steps += 1
            # the rows written, counted once written (a refused batch writes none)
            self._check_coverage(rows)
        return {"crd": loss}

    def _update(
        self, bank: Tensor, index: Tensor, embedding: Tensor, written: Tensor | None = None
    ) -> None:
        index = index.long()
        if written is not None:  # a sample drawn twice: its last row, on every device alike
            index, embedding = index[written], embedding[written]
        mixed = bank[index] * self.momentum + embedding.to(bank.dtype) * (1 - self.momentum)
        bank.index_copy_(0, index, F.normalize(mixed, dim=1))


def _last_of_each(values: list[int], device) -> Tensor | None:
    """The positions of the last occurrence of each value of ``values`` (read on the host),
    or None when no value repeats. ``index_copy_`` with a repeated index keeps the last copy on
    the CPU but any one of them on CUDA, which would let the processes' banks drift apart under
    DDP (each writes the same global batch); a sampler drawing with replacement, or padding by
    ``DistributedSampler``, repeats indices."""
    last = {value: position for position, value in enumerate(values)}
    if len(last) == len(values):
        return None
    return torch.tensor(sorted(last.values()), device=device)


class _DistributedBatch:
    """Index and detached embeddings of the global batch (all processes), in rank order."""

    def __init__(self, index: Tensor, student: Tensor, teacher: Tensor) -> None:
        import torch.distributed as dist

        self.distributed = dist.is_available() and dist.is_initialized()
        if not self.distributed or dist.get_world_size() == 1:
            self.distributed = False
            self.index, self.student, self.teacher = index, student, teacher
            return
        # torchmetrics' gather pads and trims batches of different sizes
        from torchmetrics.utilities.distributed import gather_all_tensors

        self.index = torch.cat(gather_all_tensors(index.long().contiguous()))
        self.student = torch.cat(gather_all_tensors(student.contiguous()))
        self.teacher = torch.cat(gather_all_tensors(teacher.contiguous()))

    def mean(self, values: Tensor) -> Tensor:
        if not self.distributed:
            return values.mean()
        import torch.distributed as dist

        sums = torch.stack(
            [
                values.sum().double(),
                torch.tensor(values.numel(), dtype=torch.float64, device=values.device),
            ]
        )
        dist.all_reduce(sums)
        return sums[0] / sums[1]


class SSKD(FeatureMethod):
    r"""Self-supervised knowledge distillation (Xu et al., ECCV 2020).

    Each batch is also seen rotated by 90, 180 and 270 degrees. Projection heads (two linear
    layers with a ReLU, on the flattened features of the method's layer: the penultimate,
    pooled features in the paper) give, for each rotated copy, its cosine similarity to every
    original image of the batch: a ``[3B, B]`` matrix. The teacher's head is first trained
    (its own stage, :meth:`pretrain`: cross-entropy of those similarities with the copy's own
    image as the class; SGD lr 0.05, momentum 0.9, weight decay 5e-4, as the authors, but at a
    constant rate: their 60 epochs also divide it by 10 at epochs 30 and 45) and then frozen; the student's head trains with the student. Two terms are added to the usual ones:

    - ``sskd_ss``: ``ss_weight`` times the KL divergence between the teacher's and the student's
      similarity rows softened by ``ss_temperature`` (times its square), on the rows the teacher
      gets right plus the ``ss_ratio`` share of the others it ranks best;
    - ``sskd_tf``: ``tf_weight`` times KD (temperature ``tf_temperature``) on the rotated copies'
      class logits, on the copies the teacher classifies right plus the ``tf_ratio`` share of the
      others.

    Each KL is averaged over its kept rows (``batchmean``, as the authors'); a term with no kept
    row (a teacher wrong on every copy and a ratio of 0) is 0, where their mean over no row
    was NaN.

    The paper's weights are the defaults; it trains the student with cross-entropy 0.1 and logit
    KD 0.9 on the original images, which is ``DistillationModule(alpha=0.9, temperature=4.0)``.
    The rotated copies go through the student and the teacher in one extra forward pass of
    ``3 B`` images (the paper runs all ``4 B`` at once, so batch-norm statistics differ slightly).

    Parameters
    ----------
    student_dim, teacher_dim : int
        Sizes of the flattened features.
    tf_weight : float, default=2.7
    ss_weight : float, default=10.0
    tf_temperature : float, default=4.0
    ss_temperature : float, default=0.5
        Both between ``1e-6`` and ``1e6``, as :func:`~lightning_distill.kd.losses.kd_loss`'s.
    tf_ratio : float, default=1.0
    ss_ratio : float, default=0.75
    head_epochs : int, default=60
        Epochs of the teacher head's stage.
    head_lr : float, default=0.05
    """

    needs_pretraining = True
    # a negative weight, or fewer than 0 head epochs (an untrained head marked pretrained),
    # would train the student wrong
    checked_on_set: ClassVar[dict[str, Callable]] = {
        **{
            name: functools.partial(check_real, name, minimum=0.0)
            for name in ("tf_weight", "ss_weight")
        },
        **{
            name: functools.partial(
                check_real, name, minimum=_MIN_TEMPERATURE, maximum=_MAX_TEMPERATURE
            )
            for name in ("tf_temperature", "ss_temperature")
        },
        **{
            name: functools.partial(check_real, name, minimum=0.0, maximum=1.0)
            for name in ("tf_ratio", "ss_ratio")
        },
        "head_epochs": functools.partial(check_integer, "head_epochs", minimum=0),
        "head_lr": functools.partial(check_real, "head_lr", minimum=0.0, exclusive_minimum=True),
    }

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        tf_weight: float = 2.7,
        ss_weight: float = 10.0,
        tf_temperature: float = 4.0,
        ss_temperature: float = 0.5,
        tf_ratio: float = 1.0,
        ss_ratio: float = 0.75,
        head_epochs: int = 60,
        head_lr: float = 0.05,
    ) -> None:
        super().__init__()
        student_dim = check_integer("student_dim", student_dim, minimum=1)
        teacher_dim = check_integer("teacher_dim", teacher_dim, minimum=1)
        self.tf_weight = check_real("tf_weight", tf_weight, minimum=0.0)
        self.ss_weight = check_real("ss_weight", ss_weight, minimum=0.0)
        positive = {"minimum": 0.0, "exclusive_minimum": True}
        # kd_loss's bounds: beyond them the softened KL loses its value
        temperature = {"minimum": _MIN_TEMPERATURE, "maximum": _MAX_TEMPERATURE}
        self.tf_temperature = check_real("tf_temperature", tf_temperature, **temperature)
        self.ss_temperature = check_real("ss_temperature", ss_temperature, **temperature)
        self.tf_ratio = check_real("tf_ratio", tf_ratio, minimum=0.0, maximum=1.0)
        self.ss_ratio = check_real("ss_ratio", ss_ratio, minimum=0.0, maximum=1.0)
        self.head_epochs = check_integer("head_epochs", head_epochs, minimum=0)
        self.head_lr = check_real("head_lr", head_lr, **positive)
        self.student_head = _projection_head(student_dim)
        self.teacher_head = _projection_head(teacher_dim)
        self.teacher_head.requires_grad_(False)  # trained in pretrain() only (see FactorTransfer)
        self.register_buffer("pretrained", torch.tensor(False))

    def student_parameters(self) -> list[nn.Parameter]:
        return list(self.student_head.parameters())

    def pretrain(self, inputs, teacher_feature, epochs=None) -> list[float]:
        """Train the teacher's head to match rotated copies to their originals."""
        epochs = self.head_epochs if epochs is None else check_integer("epochs", epochs, minimum=0)
        params = list(self.teacher_head.parameters())
        optimizer = torch.optim.SGD(params, lr=self.head_lr, momentum=0.9, weight_decay=5e-4)

        def step(x: Tensor) -> Tensor:
            batch = x.shape[0]
            with torch.no_grad():
                features = teacher_feature(torch.cat([x, rotate_batch(x)])).flatten(1)
            rep = _through(self.teacher_head, features)
            similarity = _rotation_similarity(rep[:batch], rep[batch:])
            return F.cross_entropy(similarity, _rotation_targets(batch, x.device))

        history = _train_stage(params, optimizer, step, inputs, epochs)
        self.pretrained.fill_(True)
        return history

    def forward(self, student_feature, teacher_feature, context=None) -> dict[str, Tensor]:
        _check_pair_batch(student_feature, teacher_feature)
        _check_width(
            "student_feature", student_feature[0].numel(), self.student_head[0].in_features
        )
        _check_width(
            "teacher_feature", teacher_feature[0].numel(), self.teacher_head[0].in_features
        )
        if context is None or context.run_student is None or context.run_teacher is None:
            raise ValueError(
                "context must give run_student and run_teacher (forward passes on the rotated "
                "copies) for SSKD; got none. Use SSKD through FeatureDistillation(loss='sskd')."
            )
        if context.targets is None:
            fail("targets", "the batch's class indices for SSKD", None)
        # type and shape against the batch, before the targets are repeated for the rotated
        # copies (their range is read with the copies' logits below)
        _check_targets(context.targets, student_feature, settle=False, values=False)
        check_finite_deferred("student_feature", student_feature)
        check_finite_deferred("teacher_feature", teacher_feature)
        x, batch = context.inputs, student_feature.shape[0]
        rotated = rotate_batch(x)
        student_logits, student_rotated = context.run_student(rotated)
        teacher_logits, teacher_rotated = context.run_teacher(rotated)
        # the extra pass's outputs (a model may overflow on a rotated image it did not on the
        # original), read with the step's other checks
        where = "on the batch's rotated copies"
        check_finite_deferred("student_logits", student_logits, where=where)
        check_finite_deferred("teacher_logits", teacher_logits, where=where)
        check_finite_deferred("student_feature", student_rotated, where=where)
        check_finite_deferred("teacher_feature", teacher_rotated, where=where)
        student_similarity = _rotation_similarity(
            _through(self.student_head, student_feature.flatten(1)),
            _through(self.student_head, student_rotated.flatten(1)),
        )
        with torch.no_grad():
            teacher_similarity = _rotation_similarity(
                _through(self.teacher_head, teacher_feature.flatten(1)),
                _through(self.teacher_head, teacher_rotated.flatten(1)),
            )
        rotated_targets = context.targets.repeat(3)
        keep_tf = _sskd_selection(
            _float_logits(teacher_logits),
            rotated_targets,
            self.tf_ratio,
            in_range=context.targets_checked,
        )
        # the rotation targets index the originals: in range by construction
        keep_ss = _sskd_selection(
            teacher_similarity, _rotation_targets(batch, x.device), self.ss_ratio, in_range=True
        )
        tf = _softened_kl(student_logits[keep_tf], teacher_logits[keep_tf], self.tf_temperature)
        ss = _softened_kl(
            student_similarity[keep_ss], teacher_similarity[keep_ss], self.ss_temperature
        )
        return {"sskd_tf": self.tf_weight * tf, "sskd_ss": self.ss_weight * ss}


# =============================================================================== by name
#: the ``FeatureDistillation(loss=...)`` names of the methods in this module
FEATURE_METHODS = ("ft", "crd", "sskd", "rkd", "pkt")
_NEEDS_SHAPES = ("ft", "crd", "sskd")


def check_batch_first(spec, student_feature, teacher_feature, rows: int) -> None:
    """Refuse a feature whose first dimension is not the batch's for a built-in loss that reads
    features per sample (all but ``"hint"``, a mean over every element, and a callable, which
    gets the features as they are): a recurrent layer's hidden state is ``[num_layers, B, H]``
    whatever ``batch_first`` says, and the loss would take its layers for samples."""
    if callable(spec.loss):
        return
    for side, layer, feature in (
        ("student", spec.student_layer, student_feature),
        ("teacher", spec.teacher_layer, teacher_feature),
    ):
        if not isinstance(feature, Tensor):
            # a layer returning a tuple (a recurrent layer, a block returning two tensors): named
            # here with the pair's layer, rather than as a loss's argument
            raise TypeError(
                f"{side} layer {layer!r} must output a tensor for loss={spec.loss!r}; it "
                f"returned a {type(feature).__name__}. Name a submodule that outputs the "
                "tensor itself"
                + (
                    f", or pick one element of the output: {layer + '[0]'!r}."
                    if isinstance(feature, tuple | list) and not layer.endswith("]")
                    else "."
                )
            )
        if spec.loss == "hint":
            continue
        if feature.dim() and feature.shape[0] != rows:
            raise ValueError(
                f"features ({side}_layer) {layer!r} must give a batch-first feature for "
                f"loss={spec.loss!r}: its first dimension should be the batch's {rows}; got "
                f"shape {tuple(feature.shape)} (a recurrent layer's hidden state is "
                "[num_layers, B, H]: distil its output sequence, 'name[0]', or give a callable "
                "loss that reads the state)."
            )


def callable_term(loss: Callable, student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
    """A user's ``loss(student_feature, teacher_feature)``, which must give a scalar tensor
    (it is weighted, logged and added to the loss)."""
    value = loss(student_feature, teacher_feature)
    if not isinstance(value, Tensor) or value.numel() != 1 or not value.is_floating_point():
        got = (
            f"a {value.dtype} tensor of shape {tuple(value.shape)}"
            if isinstance(value, Tensor)
            else f"a {type(value).__name__}"
        )
        name = getattr(loss, "__name__", type(loss).__name__)
        raise TypeError(
            f"loss must return a floating-point scalar tensor (reduce it, e.g. with .mean(), and "
            f"keep it a tensor so its gradient reaches the student); {name} returned {got}."
        )
    value = value.reshape(())

    def explain():
        name = getattr(loss, "__name__", type(loss).__name__)
        raise ValueError(
            f"loss must return a finite value; {name} returned NaN or infinity on this batch "
            "(an optimizer step on it would make the student's parameters NaN)."
        )

    # read with the step's other value checks (one host sync; see one_sync_per_step)
    value_check(~torch.isfinite(value.detach()), explain)
    return value


def method_needs_shapes(name: str) -> bool:
    """Whether the method named ``name`` is built from the features' shapes."""
    return name in _NEEDS_SHAPES


def heads_in_dtype_of(heads: nn.Module, model: nn.Module) -> None:
    """Cast ``heads`` (hint regressors, the methods' heads) to ``model``'s floating dtype.

    They are built in torch's default dtype; a student cast by hand (``student.double()``,
    without a ``precision=`` the Trainer would cast the whole module by) would otherwise hand
    them features of another dtype. Nothing happens when the model is in the default dtype, and
    the tensors a method keeps in float64 on purpose (CRD's normalisers) stay so.
    """
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is None or dtype == torch.get_default_dtype():
        return
    kept = [
        (module, name, buffer)
        for module in heads.modules()
        for name, buffer in module.named_buffers(recurse=False)
        if buffer.dtype == torch.float64
    ]
    heads.to(dtype)
    for module, name, buffer in kept:  # float64 on purpose: kept whatever the student's dtype
        setattr(module, name, buffer)


def build_feature_method(
    name: str,
    student_shape: tuple[int, ...] | None = None,
    teacher_shape: tuple[int, ...] | None = None,
    options: dict | None = None,
) -> FeatureMethod:
    """The method ``name`` for features of the given per-sample shapes, with ``options``.

    ``options`` are keyword arguments of the method's class (e.g. ``{"num_samples": 50000}``
    for ``"crd"``, which needs it; ``{"head_epochs": 10}`` for ``"sskd"``).
    """
    import inspect

    classes = {"ft": FactorTransfer, "crd": CRD, "sskd": SSKD, "rkd": RKD, "pkt": PKT}
    if name not in classes:
        fail("loss", "one of " + ", ".join(map(repr, FEATURE_METHODS)), name)
    cls = classes[name]
    options = {} if options is None else options
    if not isinstance(options, dict):
        fail("options", "a dict of keyword arguments or None", options, TypeError)
    positional = {"ft": ("student_channels", "teacher_channels")}.get(
        name, ("student_dim", "teacher_dim") if name in _NEEDS_SHAPES else ()
    )
    allowed = [p for p in inspect.signature(cls).parameters if p not in positional]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        fail("options", f"keyword arguments of {cls.__name__} ({', '.join(allowed)})", unknown)
    if name == "crd" and "num_samples" not in options:
        fail(
            "options",
            "a dict with num_samples (the training set's size, the rows of CRD's memory bank) "
            "for loss='crd'",
            options,
        )
    if not positional:
        return cls(**options)
    student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
    if name == "ft":
        for which, shape in (("student", student_shape), ("teacher", teacher_shape)):
            if len(shape) != 3:
                fail(f"{which} feature", "a [B, C, H, W] feature map for loss='ft'", shape)
        return cls(student_shape[0], teacher_shape[0], **options)
    return cls(math.prod(student_shape), math.prod(teacher_shape), **options)


class LoaderInputs:
    """The inputs of the batches of ``loader``, moved to ``device`` and converted as the
    Trainer's precision converts a batch (``convert``: float64 under ``"64-true"``, bfloat16
    under ``"bf16-true"``); iterable again each epoch.

    ``limit_batches``: at most that many batches per pass (all when None).
    ``limit_epochs``: a first stage run on these inputs runs at most that many epochs, whatever
    its own number (None: its own number).

    Each pass ``k`` (from 0) first calls ``set_epoch(k)`` on the loader's sampler and its batch
    sampler's sampler where they have one, as the Trainer does at each epoch's start: a
    ``DistributedSampler`` (which Lightning puts in under DDP) that shuffles then gives every
    pass its own order, as a shuffling loader does in one process, where it would repeat one.
    """

    def __init__(
        self,
        loader: Iterable,
        device,
        unpack: Callable,
        convert=None,
        *,
        limit_batches: int | None = None,
        limit_epochs: int | None = None,
    ) -> None:
        self.loader, self.device, self.unpack = loader, device, unpack
        self.yielded = 0  # batches given so far, over every pass
        self.passes = 0  # passes begun
        self.convert = convert
        self.limit_batches = (
            None
            if limit_batches is None
            else check_integer("limit_batches", limit_batches, minimum=0)
        )
        self.limit_epochs = (
            None if limit_epochs is None else check_integer("limit_epochs", limit_epochs, minimum=1)
        )

    @classmethod
    def of_trainer(cls, trainer, device, unpack: Callable) -> LoaderInputs:
        """The inputs of ``trainer``'s training data, as its precision plugin gives batches, and
        as many per pass as the Trainer's training epochs read: ``trainer.num_training_batches``,
        Lightning's count after ``limit_train_batches``, ``overfit_batches`` (whose loader it
        has made sequential, so these are the overfitted batches) and ``fast_dev_run``; under
        ``fast_dev_run`` a first stage runs one epoch."""
        loader = trainer.train_dataloader
        if isinstance(loader, Iterator):
            # the first stage would read it, and the student's epochs train on what is left
            raise TypeError(
                "the feature method's first stage (FT's paraphraser, SSKD's head) trains on "
                "the fit's training data before the student does, so it must be data that "
                f"can be read again (a DataLoader, a list of batches); got a one-shot "
                f"{type(loader).__name__} as train_dataloaders."
            )
        count = trainer.num_training_batches
        limit = None if math.isinf(count) else int(count)
        return cls(
            loader,
            device,
            unpack,
            trainer.precision_plugin.convert_input,
            limit_batches=limit,
            limit_epochs=1 if trainer.fast_dev_run else None,
        )

    def __iter__(self):
        _set_sampler_epoch(self.loader, self.passes)
        self.passes += 1
        for batch in itertools.islice(self.loader, self.limit_batches):
            inputs = self.unpack(batch)[0]
            if inputs is None:  # a batch the training step skips
                continue
            self.yielded += 1
            inputs = inputs.to(self.device)
            yield inputs if self.convert is None else self.convert(inputs)


# =============================================================================== helpers
def _set_sampler_epoch(loader, epoch: int) -> None:
    """``set_epoch(epoch)`` on ``loader``'s sampler and its batch sampler's sampler (once for
    one sampler), where they have it; Lightning's own function for this is private."""
    sampler = getattr(loader, "sampler", None)
    inner = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    for each in (sampler,) if inner is sampler else (sampler, inner):
        set_epoch = getattr(each, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)


def _through(head: nn.Module, feature: Tensor) -> Tensor:
    """``head`` applied to ``feature`` in the head's own dtype (a ``"bf16-true"`` or ``"64-true"``
    run casts the heads with the module, while features may come wider or narrower), its
    output widened as the losses are computed (float32, or float64 kept)."""
    param = next(head.parameters(), None)
    feature = _float_logits(feature) if param is None else feature.to(param.dtype)
    return _float_logits(head(feature))


def _conv_stack(channels: list[int], conv=nn.Conv2d) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [conv(c_in, c_out, 3, 1, 1), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


def _projection_head(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))


def _train_stage(params, optimizer, step, inputs, epochs: int) -> list[float]:
    """A plain loop over ``inputs`` (averaging gradients over processes under DDP)."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    limit = getattr(inputs, "limit_epochs", None)  # LoaderInputs of a fast_dev_run: one epoch
    if limit is not None:
        epochs = min(epochs, limit)
    history = []
    for param in params:
        param.requires_grad_(True)
    for _ in range(epochs):
        total, count = 0.0, 0
        for x in inputs:
            optimizer.zero_grad()
            with torch.enable_grad():
                loss = step(x)
                loss.backward()
            if distributed:
                for param in params:
                    if param.grad is not None:
                        dist.all_reduce(param.grad)
                        param.grad /= dist.get_world_size()
            optimizer.step()
            total, count = total + float(loss.detach()), count + 1
        history.append(total / max(count, 1))
    for param in params:
        param.grad = None
        param.requires_grad_(False)
    return history


def _rotation_targets(batch: int, device) -> Tensor:
    # rotated row j is a copy of original sample j % batch (see rotate_batch)
    return torch.arange(3 * batch, device=device) % batch


def _rotation_similarity(original: Tensor, rotated: Tensor) -> Tensor:
    """Cosine similarity of every rotated copy (rows) with every original (columns), in
    float32 (float64 kept) with autocast off."""
    original, rotated = _float_logits(original), _float_logits(rotated)
    with _autocast_off(original):
        return F.normalize(rotated, dim=1, eps=1e-8) @ F.normalize(original, dim=1, eps=1e-8).T


def _softened_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), a mean over the rows: kd_loss's
    (in float64 above T = 10, where float32's rounding times T^2 was a wrong, even negative,
    value; shifted, so that a small T is not inf - inf = NaN); 0 for no row or one column."""
    if student.shape[0] == 0 or student.shape[1] == 1:  # a softmax over one column is 1
        return student.sum() * 0.0
    return _kd_loss(student, teacher, temperature, "batchmean", values_checked=True)


def _check_pair_batch(student, teacher, names=("student_feature", "teacher_feature")) -> None:
    check_float_tensor(names[0], student)
    check_float_tensor(names[1], teacher)
    _check_not_empty(names[0], student)  # a mean over no sample would be NaN
    if student.shape[0] != teacher.shape[0]:
        fail(
            names[1],
            f"a batch of the same size as {names[0]} ({student.shape[0]})",
            tuple(teacher.shape),
        )
    check_same_device(names[1], teacher, names[0], student)


def _check_width(name: str, got: int, built_for: int) -> None:
    # a feature of another size than the method's layers were built for failed inside torch
    if got != built_for:
        fail(name, f"a feature of {built_for} per sample (the size the method was built for)", got)


def _check_image_feature(name: str, feature: Tensor) -> None:
    if feature.dim() != 4:
        fail(name, "a [B, C, H, W] feature map", tuple(feature.shape))


# where CRD's index comes from, and what to do when a batch's third item is something else
_INDEX_SOURCE = (
    "CRD reads it from the batch's third item (inputs, targets, index), or its 'index' or "
    "'idx' key; a batch whose third item is something else (sequence lengths, a mask, sample "
    "weights) carries that inside its inputs, or, with KnowledgeDistillation, gives "
    "index_from=callable(batch) -> index"
)


def _check_index(index, num_samples: int) -> Tensor:
    """The index's type and shape (its range is read with its values, :func:`_check_range`)."""
    if index is None:
        raise ValueError(
            "index must be given: CRD needs batches (inputs, targets, index) with each sample's "
            "position in the dataset (e.g. SyntheticConcepts.classification(with_index=True)); "
            "got None."
        )
    got = index_problem(index)
    if got is not None:
        if not isinstance(index, Tensor):
            got = describe(index)
        raise TypeError(
            f"index must be a 1-D integer tensor of sample positions; got {got} ({_INDEX_SOURCE})."
        )
    return index


def _check_range(values: list[int], num_samples: int) -> None:
    """Sample positions (read on the host) within the bank's rows."""
    if values and (min(values) < 0 or max(values) >= num_samples):
        raise ValueError(
            f"index must be in [0, num_samples) = [0, {num_samples}); got values in "
            f"[{min(values)}, {max(values)}] ({_INDEX_SOURCE}; num_samples is the data set's "
            "size)."
        )


def rotate_batch(images: Tensor) -> Tensor:
    """Copies of ``[B, C, H, W]`` images rotated by 90, 180 and 270 degrees: ``[3B, C, H, W]``.

    Row ``j`` is a rotated copy of image ``j % B``. Rotation by 90 degrees swaps height and
    width, so the images must be square.
    """
    check_float_tensor("inputs", images)
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        fail(
            "inputs",
            "square images [B, C, H, W] with H == W (SSKD rotates them by 90 degrees, which "
            "swaps H and W)",
            tuple(images.shape),
        )
    return torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in (1, 2, 3)])


# =============================================================================== pure losses
def _flat_pair(student: Tensor, teacher: Tensor, names) -> tuple[Tensor, Tensor]:
    _check_pair_batch(student, teacher, names)
    # read with the step's other value checks (one host sync; see one_sync_per_step)
    check_finite_deferred(names[0], student)
    check_finite_deferred(names[1], teacher)
    student = student.flatten(1)
    teacher = teacher.flatten(1)
    return _float_logits(student), _float_logits(teacher)


def _pairwise_distances(embedding: Tensor, eps: float = 1e-12) -> Tensor:
    # centred first: distances do not change, and |a|^2 + |b|^2 - 2ab no longer cancels for
    # embeddings that share a large offset (float32 lost the distances then); squared norms
    # clamped before the square root: a zero distance has a finite gradient
    embedding = embedding - embedding.mean(dim=0, keepdim=True)
    squared = embedding.pow(2).sum(1)
    distances = squared.unsqueeze(1) + squared.unsqueeze(0) - 2 * embedding @ embedding.T
    distances = distances.clamp(min=eps).sqrt()
    return distances * (
        1 - torch.eye(len(embedding), dtype=distances.dtype, device=distances.device)
    )


def _angles(embedding: Tensor, eps: float = 1e-12) -> Tensor:
    # [a, b, c] = cosine of the angle at a between b and c. The direction between two
    # coincident samples (a sample with itself, duplicates) is 0, a constant: F.normalize's
    # x / max(|x|, eps) is 0 there too, but with a gradient of 1 / eps = 1e12, which a batch
    # with two identical samples (two all-zero ReLU features) sent into the student.
    differences = embedding.unsqueeze(0) - embedding.unsqueeze(1)
    norms = differences.norm(p=2, dim=2, keepdim=True)
    apart = norms > eps
    directions = torch.where(
        apart, differences / torch.where(apart, norms, torch.ones_like(norms)), 0.0
    )
    return torch.bmm(directions, directions.transpose(1, 2))


def _rkd_terms(student_embedding, teacher_embedding, with_angles: bool = True):
    student, teacher = _flat_pair(
        student_embedding, teacher_embedding, ("student_embedding", "teacher_embedding")
    )
    batch = student.shape[0]
    if batch < 3:
        # two samples have one distance, which divided by the mean distance is 1 whatever the
        # embeddings: the distance term would be 0 and teach nothing
        fail(
            "student_embedding",
            "a batch of at least 3 samples (RKD compares "
            + (
                "triplets for its angles"
                if with_angles
                else "distances divided by their mean, all 1 for two samples"
            )
            + "; a last batch smaller than that: DataLoader(..., drop_last=True))",
            tuple(student_embedding.shape),
        )
    # the mean over the off-diagonal pairs as the sum over all (the diagonal is exactly 0)
    # divided by their number: a boolean-mask selection would make the host wait for the device
    pairs = batch * (batch - 1)
    teacher = teacher.detach()
    with _autocast_off(student):  # float32 matrix products under a mixed-precision Trainer
        teacher_distances = _pairwise_distances(teacher)
        teacher_distances = teacher_distances / (teacher_distances.sum() / pairs)
        student_distances = _pairwise_distances(student)
        student_distances = student_distances / (student_distances.sum() / pairs)
        distance = F.smooth_l1_loss(student_distances, teacher_distances)
        angle = (
            F.smooth_l1_loss(_angles(student), _angles(teacher)) if with_angles else distance * 0
        )
    return distance, angle


def rkd_loss(
    student_embedding: Tensor,
    teacher_embedding: Tensor,
    distance_weight: float = 25.0,
    angle_weight: float = 50.0,
) -> Tensor:
    r"""Relational knowledge distillation (Park et al., CVPR 2019): distance and angle terms.

    With the embeddings flattened to ``[B, D]``, the pairwise Euclidean distances are divided by
    their mean over the off-diagonal pairs, :math:`\psi_D(i, j) = \|x_i - x_j\| / \mu`, and the
    angle term compares :math:`\psi_A(i, j, k) = \langle e_{ji}, e_{ki} \rangle` with
    :math:`e_{ji} = (x_j - x_i) / \|x_j - x_i\|` over all triplets. Both use smooth-L1 with mean
    reduction over the full ``[B, B]`` and ``[B, B, B]`` tensors, as in the authors' code:

    .. math:: w_D\,\mathrm{smoothL1}(\psi_D^s, \psi_D^t) + w_A\,\mathrm{smoothL1}(\psi_A^s, \psi_A^t)

    The teacher side is detached. Computed in float32 (float64 inputs in float64) with autocast
    off, so under a mixed-precision Trainer bfloat16 features give the float32 value (autocast
    would run the distances and angles in bfloat16). Invariant to the scale of either embedding
    (down to pairwise
    distances of about 1e-6, below which the clamp that keeps a zero distance's gradient finite
    takes over). Two identical samples (duplicates, two all-zero features) have no direction
    between them: it counts as 0 in the angles, as in the authors' code, and gives no gradient.

    Parameters
    ----------
    student_embedding, teacher_embedding : Tensor of shape [B, ...]
        Flattened per sample; dimensions may differ, batch sizes must agree, B >= 3 (with two
        samples the one normalised distance is 1 whatever the embeddings, and there is no
        triplet for an angle).
    distance_weight : float, default=25.0
    angle_weight : float, default=50.0
        ``0`` drops the angle term.

    Examples
    --------
    >>> x = torch.randn(5, 8)
    >>> float(rkd_loss(x, 3.0 * x)) < 1e-10
    True
    """
    distance_weight = check_real("distance_weight", distance_weight, minimum=0.0)
    angle_weight = check_real("angle_weight", angle_weight, minimum=0.0)
    distance, angle = _rkd_terms(student_embedding, teacher_embedding, angle_weight > 0)
    return distance_weight * distance + angle_weight * angle


def pkt_loss(student_embedding: Tensor, teacher_embedding: Tensor, eps: float = 1e-7) -> Tensor:
    r"""Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018).

    Each embedding (flattened to ``[B, D]``) is divided by its norm plus ``eps``; the cosine
    similarities are mapped to ``[0, 1]`` by :math:`(c + 1) / 2` and normalised per row into
    conditional distributions :math:`p_{j|i}`. The loss is the mean over the ``B x B`` matrix of

    .. math:: p^t_{j|i} \log\frac{p^t_{j|i} + \epsilon}{p^s_{j|i} + \epsilon}

    as in the authors' code, in float32 (float64 inputs in float64) with autocast off (under
    autocast the similarities of nearby embeddings would be bfloat16 rounding noise). Invariant
    (up to ``eps``) to rescaling either embedding by a positive factor. A batch of one sample gives 0: it has no pair to compare.

    Parameters
    ----------
    student_embedding, teacher_embedding : Tensor of shape [B, ...]
    eps : float in (0, 1], default=1e-7

    Examples
    --------
    >>> x = torch.randn(4, 6)
    >>> float(pkt_loss(x, x))
    0.0
    """
    eps = check_real("eps", eps, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    student, teacher = _flat_pair(
        student_embedding, teacher_embedding, ("student_embedding", "teacher_embedding")
    )

    def conditional(embedding: Tensor) -> Tensor:
        unit = embedding / (embedding.norm(dim=1, keepdim=True) + eps)
        similarity = (unit @ unit.T + 1.0) / 2.0
        return similarity / similarity.sum(dim=1, keepdim=True)

    with _autocast_off(student):  # float32 matrix products under a mixed-precision Trainer
        p_student = conditional(student)
        p_teacher = conditional(teacher.detach())
        return (p_teacher * torch.log((p_teacher + eps) / (p_student + eps))).mean()


def factor_transfer_loss(student_factor: Tensor, teacher_factor: Tensor) -> Tensor:
    r"""Factor-transfer loss (Kim et al., NeurIPS 2018): L1 distance of normalised factors.

    .. math:: \mathrm{mean}\,\Big|\frac{F_s}{\|F_s\|_2} - \frac{F_t}{\|F_t\|_2}\Big|

    with each factor flattened per sample and the mean over batch and positions (the authors'
    code: ``L1Loss`` of the normalised factors). Factors of different spatial sizes are
    average-pooled to the smaller one.

    Parameters
    ----------
    student_factor, teacher_factor : Tensor of shape [B, C, H, W] (or [B, D])
        The translator's and the paraphraser's outputs; same batch and channel count.
    """
    _check_pair_batch(student_factor, teacher_factor, ("student_factor", "teacher_factor"))
    for name, factor in (("student_factor", student_factor), ("teacher_factor", teacher_factor)):
        if factor[0].numel() == 0:  # a mean over no value: NaN
            fail(name, "a factor of at least one value per sample", tuple(factor.shape))
    check_finite_deferred("student_factor", student_factor)
    check_finite_deferred("teacher_factor", teacher_factor)
    student_factor = _float_logits(student_factor)
    teacher_factor = _float_logits(teacher_factor)
    with _autocast_off(student_factor):
        if student_factor.dim() == 4 and teacher_factor.dim() == 4:
            size = tuple(
                min(a, b) for a, b in zip(student_factor.shape[2:], teacher_factor.shape[2:])
            )
            if student_factor.shape[2:] != size:
                student_factor = F.adaptive_avg_pool2d(student_factor, size)
            if teacher_factor.shape[2:] != size:
                teacher_factor = F.adaptive_avg_pool2d(teacher_factor, size)
        student = F.normalize(student_factor.flatten(1), dim=1)
        teacher = F.normalize(teacher_factor.flatten(1), dim=1)
        if student.shape != teacher.shape:
            fail(
                "student_factor",
                f"the teacher factor's size per sample ({teacher.shape[1]})",
                tuple(student_factor.shape),
            )
        return (student - teacher.detach()).abs().mean()


def crd_contrast_loss(scores: Tensor, num_samples: int, eps: float = 1e-7) -> Tensor:
    r"""CRD's NCE loss, eq. (18) of Tian et al.: one positive (column 0) and K negatives.

    ``scores`` are the normalised similarities :math:`P = \exp(v^\top m / \tau) / Z`, shape
    ``[B, 1 + K]``. With the uniform noise :math:`P_n = 1 / N` (``N = num_samples``):

    .. math:: -\frac{1}{B}\sum_i \Big[\log\frac{P_{i0}}{P_{i0} + K P_n + \epsilon}
              + \sum_{k \ge 1} \log\frac{K P_n}{P_{ik} + K P_n + \epsilon}\Big]
    """
    check_float_tensor("scores", scores)
    _check_not_empty("scores", scores)
    if scores.dim() != 2 or scores.shape[1] < 2:
        fail(
            "scores",
            "a [B, 1 + K] tensor with K >= 1 negatives (column 0 the positive; without a "
            "negative the loss is about 0 whatever the embeddings)",
            tuple(scores.shape),
        )
    num_samples = check_integer("num_samples", num_samples, minimum=1)

    def explain() -> None:
        raise ValueError(
            "scores must be finite similarities exp(v.m / T) / Z, >= 0 (> 0 for the positive, "
            f"column 0); got {int((~torch.isfinite(scores)).sum())} NaN or infinite values, "
            f"{int((scores < 0).sum())} negative and {int((scores[:, 0] == 0).sum())} zero "
            "positives."
        )

    # one reduction, read with the step's other value checks (one host sync)
    value_check(
        ~((torch.isfinite(scores) & (scores >= 0)).all() & (scores[:, 0] > 0).all()), explain
    )
    negatives = scores.shape[1] - 1
    noise = negatives / num_samples
    scores = _float_logits(scores)
    with _autocast_off(scores):
        positive = torch.log(scores[:, 0] / (scores[:, 0] + noise + eps))
        negative = torch.log(noise / (scores[:, 1:] + noise + eps))
        return -(positive.sum() + negative.sum()) / scores.shape[0]


def _crd_log_contrast_loss(log_scores: Tensor, num_samples: int, eps: float = 1e-7) -> Tensor:
    """:func:`crd_contrast_loss` of ``log_scores.exp()``, computed from the logs (the scores
    themselves may overflow or underflow)."""
    noise = (log_scores.shape[1] - 1) / num_samples
    log_floor = log_scores.new_tensor(math.log(noise + eps))
    positive = log_scores[:, 0] - torch.logaddexp(log_scores[:, 0], log_floor)
    negative = math.log(noise) - torch.logaddexp(log_scores[:, 1:], log_floor)
    return -(positive.sum() + negative.sum()) / log_scores.shape[0]


def sskd_selection(scores: Tensor, targets: Tensor, ratio: float) -> Tensor:
    """SSKD's error-level selection: the rows to distil on, in increasing order.

    A row's rank is the number of columns that score strictly above its target's column. Rows
    of rank 0 (the target scores highest, a tie included) are all kept; of the others, the
    ``ratio`` share (rounded down) of lowest rank is kept, rows of equal rank in their order.
    ``scores`` is ``[N, C]`` (floating point, finite), ``targets`` ``N`` integer column
    indices in ``[0, C)``.

    The authors take the target's position in an ``argsort`` of the row, the same rank when no
    column ties the target's; with a tie (a rotated copy as similar to two identical originals
    of the batch) that position depends on the sort's order of equal values (on the number of
    columns, the device), which the count here does not.
    """
    return _sskd_selection(scores, targets, ratio)


def _sskd_selection(scores: Tensor, targets: Tensor, ratio: float, *, in_range=False) -> Tensor:
    """:func:`sskd_selection`; ``in_range``: the targets' range is known (checked already in
    this step, or built in range), so it is not checked again."""
    check_float_tensor("scores", scores)
    if scores.dim() != 2:
        fail("scores", "a [rows, columns] tensor", tuple(scores.shape))
    # read with the step's other value checks: the targets are compared, never used as indices;
    # a NaN compares False with every score (at the target it would leave no column above)
    _check_targets(targets, scores, settle=False, values=not in_range)
    check_finite_deferred("scores", scores)
    ratio = check_real("ratio", ratio, minimum=0.0, maximum=1.0)
    # the target's score through a mask, not gather: an index out of range (refused when the
    # step's checks are read) would stop a CUDA device before that
    columns = torch.arange(scores.shape[1], device=scores.device)
    is_target = columns.unsqueeze(0) == targets.to(scores.device).unsqueeze(1)
    target_score = torch.where(is_target, scores, float("-inf")).amax(dim=1, keepdim=True)
    rank = (scores > target_score).sum(dim=1)
    wrong = int((rank > 0).sum())
    keep = scores.shape[0] - wrong + int(wrong * ratio)
    return rank.argsort(stable=True)[:keep].sort().values


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> Tensor:
    r"""Decoupled knowledge distillation (Zhao et al., CVPR 2022).

    KD splits into a target-class term (TCKD: KL between the binary distributions
    :math:`(p_t, 1 - p_t)` of teacher and student) and a non-target term (NCKD: KL between the
    distributions over the non-target classes, renormalised); with teacher probabilities at
    temperature T, :math:`\mathrm{KD} = \mathrm{TCKD} + (1 - p^t_t)\,\mathrm{NCKD}`. DKD weights
    them freely:

    .. math:: T^2 \big(\alpha\,\mathrm{TCKD} + \beta\,\mathrm{NCKD}\big)

    each KL averaged over the batch (``batchmean``). Computed from ``log_softmax`` (stable for
    large logits), as :func:`~lightning_distill.kd.losses.kd_loss` in float32 for ``T <= 10``
    and in float64 above (float64 logits always), returned in the logits' floating dtype;
    invariant to a constant added to a sample's logits. The teacher side is not detached:
    ``teacher_logits`` that require grad receive gradients.

    The authors ramp the whole DKD term up linearly over the first 20 epochs; multiply by
    :func:`dkd_warmup` for that.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape [batch, classes]
    targets : integer Tensor of shape [batch]
    alpha : float, default=1.0
        Weight of TCKD.
    beta : float, default=8.0
        Weight of NCKD.
    temperature : float, default=4.0

    Examples
    --------
    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(dkd_loss(s, s, torch.tensor([0])))
    0.0
    """
    _check_pair(student_logits, teacher_logits)
    _check_not_empty("student_logits", student_logits)
    # a class masked with -inf would make the target or non-target distribution undefined
    check_finite_deferred("student_logits", student_logits)
    check_finite_deferred("teacher_logits", teacher_logits)
    _check_targets(targets, student_logits)  # read with them, before one_hot uses the targets
    temperature = _check_temperature(temperature)
    alpha = check_real("alpha", alpha, minimum=0.0)
    beta = check_real("beta", beta, minimum=0.0)
    batch, classes = student_logits.shape
    # as kd_loss: float64 above T = 10, where T^2 magnifies float32's rounding (at T = 1e4 the
    # float32 loss was twice the true one, at T = 1e5 negative), and for float64 logits
    out_dtype = _float_logits(student_logits).dtype
    wide = temperature > _FLOAT32_TEMPERATURE or out_dtype == torch.float64
    index = targets.long().reshape(batch, 1)
    # the target class of each row, as a mask (no boolean-mask selection below: that would make
    # the host wait for the device to count the selected values)
    target_mask = torch.zeros(
        batch, classes, dtype=torch.bool, device=student_logits.device
    ).scatter_(1, index.to(student_logits.device), True)
    with _autocast_off(student_logits):

        def split(logits: Tensor) -> tuple[Tensor, Tensor]:
            logits = (logits.double() if wide else _float_logits(logits)) / temperature
            log_p = F.log_softmax(logits, dim=1)
            log_target = log_p.gather(1, index.to(logits.device)).squeeze(1)
            # the other classes: the target's logit as -inf drops it from the log-sums;
            # log(1 - p_t) as the log-sum of the other classes' probabilities: no cancellation
            others = logits.masked_fill(target_mask, -math.inf)
            log_rest = torch.logsumexp(others, dim=1) - torch.logsumexp(logits, dim=1)
            binary = torch.stack([log_target, log_rest], dim=1)
            # the target's entry 0 in both distributions: it adds 0 to the divergence
            return binary, F.log_softmax(others, dim=1).masked_fill(target_mask, 0.0)

        student_binary, student_others = split(student_logits)
        teacher_binary, teacher_others = split(teacher_logits)
        tckd = F.kl_div(student_binary, teacher_binary, reduction="batchmean", log_target=True)
        nckd = F.kl_div(student_others, teacher_others, reduction="batchmean", log_target=True)
    return (temperature**2 * (alpha * tckd + beta * nckd)).to(out_dtype)


def dkd_warmup(epoch: float, warmup_epochs: int = 20) -> float:
    """Linear warm-up factor ``min(epoch / warmup_epochs, 1)`` of the DKD term.

    The authors multiply the whole DKD loss by it, with epochs counted from 1: in a
    ``LightningModule`` pass ``self.current_epoch + 1`` (Lightning counts from 0, and
    ``current_epoch`` would switch DKD off for the whole first epoch). To warm up only ``beta``,
    pass ``beta * dkd_warmup(epoch)`` instead.
    """
    epoch = check_real("epoch", epoch, minimum=0.0)
    warmup_epochs = check_integer("warmup_epochs", warmup_epochs, minimum=1)
    return min(epoch / warmup_epochs, 1.0)
