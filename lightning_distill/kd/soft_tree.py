r"""A soft decision tree, the interpretable student of Frosst & Hinton (2017).

"Distilling a Neural Network Into a Soft Decision Tree": every inner node :math:`i` sends an
input to its right child with probability :math:`p_i(x) = \sigma(\beta(w_i^\top x + b_i))`
(:math:`\beta` an inverse temperature), every leaf :math:`\ell` holds a class distribution
:math:`Q^\ell = \mathrm{softmax}(\phi^\ell)`, and the path probability :math:`P^\ell(x)` of a
leaf is the product of the branch probabilities along its path. The tree predicts the mixture
:math:`\sum_\ell P^\ell(x) Q^\ell`, or the distribution of the most probable leaf; each node's
filter :math:`w_i` is a picture of what the node looks for.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure, FigureBase
from torch import Tensor, nn

from lightning_distill._precision import autocast_on
from lightning_distill._validation import (
    check_choice,
    check_finite,
    check_integer,
    check_real,
    fail,
    refuse_fixed_setting,
    torch_assigns,
)

__all__ = ["SoftDecisionTree"]

TreeOutput = Literal["mixture", "max_leaf"]


#: The settings checked when set after construction, with the constructor's bounds.
_CHECKED_ON_SET = {
    "inverse_temperature": {"minimum": 0.0, "exclusive_minimum": True},
    "penalty_strength": {"minimum": 0.0},
}

#: The settings the tree's parameters are sized from (fixed at construction).
_SIZES = ("in_features", "num_classes", "depth")


def _check_input_shape(input_shape, in_features: int) -> tuple[int, ...] | None:
    """``input_shape``: None, or a shape of ``in_features`` elements (as a tuple)."""
    if input_shape is None:
        return None
    if isinstance(input_shape, str) or not isinstance(input_shape, Iterable):
        fail("input_shape", "a tuple of positive ints", input_shape, TypeError)
    input_shape = tuple(check_integer("input_shape", size, minimum=1) for size in input_shape)
    if math.prod(input_shape) != in_features:
        fail("input_shape", f"a shape of {in_features} elements", input_shape)
    return input_shape


def _check_feature_names(feature_names, in_features: int) -> list[str] | None:
    """``feature_names``: None, or ``in_features`` distinct names (as a list of its own)."""
    if feature_names is None:
        return None
    if isinstance(feature_names, str) or not isinstance(feature_names, Iterable):
        # a str would be read as one name per character
        fail("feature_names", "a list of names", feature_names, TypeError)
    if isinstance(feature_names, set | frozenset):
        # a set's order is not the features' (and changes from run to run)
        fail(
            "feature_names",
            "an ordered list of names, one per input in order (a set has no order)",
            feature_names,
            TypeError,
        )
    feature_names = [str(name) for name in feature_names]
    if len(feature_names) != in_features:
        fail("feature_names", f"a list of {in_features} names", feature_names)
    if len(set(feature_names)) != len(feature_names):
        fail("feature_names", "distinct names (explanations name features)", feature_names)
    return feature_names


#: The log of the smallest share a node's balance penalty reads (1e-30).
_LOG_SHARE_FLOOR = -69.0776


def _plain_value(value) -> float:
    """A setting as a float: a learned one (a tensor) read without its graph."""
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


class SoftDecisionTree(nn.Module):
    r"""A binary soft decision tree of fixed depth (Frosst & Hinton, 2017).

    ``forward`` returns log-probabilities, which are logits (``softmax`` gives back the
    probabilities), so :class:`~lightning_distill.DistillationModule` trains the tree like any
    student: the KD term at temperature :math:`T` compares the teacher with
    :math:`\mathrm{softmax}(\log q / T)`.

    The training loss differs from the paper's on one point: the paper's loss is the expected
    cross-entropy over leaves, :math:`-\sum_\ell P^\ell \sum_k T_k \log Q^\ell_k`; here the
    cross-entropy (and KD term) is taken of the mixture :math:`\sum_\ell P^\ell Q^\ell`, which is
    what ``forward`` must return to be a student like any other.

    The paper's balance penalty keeps every inner node from sending all inputs one way:

    .. math:: C = -\lambda \sum_i \gamma^{d(i)} \tfrac12\big(\log\alpha_i + \log(1 - \alpha_i)\big),
              \qquad \alpha_i = \frac{\sum_x P^i(x)\, p_i(x)}{\sum_x P^i(x)}

    with :math:`P^i` the probability of reaching node :math:`i`, :math:`d(i)` its depth (0 at
    the root, whose term has weight :math:`\lambda`; the paper does not say, and counting the
    root as depth 1 halves every term) and :math:`\gamma = 2^{-1}` the paper's decay.

    It is computed on the training batch (training mode, gradients on; eval-mode and no-grad
    calls leave it alone) and kept in :attr:`balance_penalty` for the distillation module,
    which adds it to the loss and logs it as ``train/constraint_tree_balance``. A tree called
    several times in one step (on two views of a batch, on two inputs, on chunks of a batch)
    has one penalty for them all, :math:`\alpha_i` taken over every row of every training call
    since the penalty was last read with :meth:`pop_balance_penalty` or since a backward pass
    went through the tree: the paper's :math:`\alpha_i` is the share of the inputs that the
    node routes, and the rows of all the calls are the inputs the tree routes in the step. The
    penalty is therefore that of one call on all the rows together, however the calls split
    them (a sum over the calls would multiply :math:`\lambda` by their number; a mean of the
    calls' own penalties would balance each call alone). Until then the calls' graphs are
    kept: call the tree in eval mode or under ``torch.no_grad()`` when not training.
    :math:`\alpha_i` is the current step's alone: the paper keeps an exponentially decaying
    running average of it (a window growing with depth) and gives no formula for it, so none
    is kept here. Batches must therefore be large enough for a node's share to mean something:
    with one row, :math:`\alpha_i` is that row's own branch probability, and the penalty pushes
    every single row toward an even split.

    Parameters
    ----------
    in_features : int
        Inputs are flattened to ``[batch, in_features]`` (images ``[batch, C, H, W]`` included).
    num_classes : int
        At least 2.
    depth : int, default=4
        Number of inner levels: ``2**depth - 1`` inner nodes and ``2**depth`` leaves.
    inverse_temperature : float, default=1.0
        :math:`\beta`; larger values make the splits sharper.
    penalty_strength : float, default=0.1
        :math:`\lambda` of the balance penalty; 0 switches it off.
    penalty_decay : float, default=0.5
        :math:`\gamma`, the factor applied per level of depth.
    output : {"mixture", "max_leaf"}, default="mixture"
        ``"mixture"``: log of the path-probability mixture (differentiable, for training);
        ``"max_leaf"``: log of the most probable leaf's distribution (the paper's test-time
        prediction, which one path explains completely).
    input_shape : tuple of int, optional
        Shape of one input (e.g. ``(8, 8)``) for drawing filters as images.
    feature_names : list of str, optional
        Names of the ``in_features`` inputs, for bar charts of tabular filters and
        :meth:`explain`.

    Attributes
    ----------
    inner : torch.nn.Linear
        Row :math:`i` holds filter :math:`w_i` and bias :math:`b_i`; nodes are numbered breadth
        first (children of node :math:`i` are :math:`2i+1`, left, and :math:`2i+2`, right).
    leaf_logits : torch.nn.Parameter
        :math:`\phi`, shape ``[2**depth, num_classes]``.
    split_weights : Tensor
        ``inner.weight``, the filters :math:`w_i`: the weights
        :class:`~lightning_distill.kd.constraints.L1Sparsity` penalises in the tree (never
        ``leaf_logits``).
    balance_penalty : Tensor or None
        The balance penalty of the training calls since it was last read with
        :meth:`pop_balance_penalty` or since a backward pass went through the tree (None when
        there were none).

    Examples
    --------
    >>> tree = SoftDecisionTree(in_features=4, num_classes=3, depth=2)
    >>> x = torch.randn(5, 4)
    >>> tree.leaf_probabilities(x).shape
    torch.Size([5, 4])
    >>> bool(torch.allclose(tree(x).exp().sum(dim=1), torch.ones(5)))
    True
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        depth: int = 4,
        *,
        inverse_temperature: float = 1.0,
        penalty_strength: float = 0.1,
        penalty_decay: float = 0.5,
        output: TreeOutput = "mixture",
        input_shape: tuple[int, ...] | None = None,
        feature_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_integer("in_features", in_features, minimum=1)
        self.num_classes = check_integer("num_classes", num_classes, minimum=2)
        self.depth = check_integer("depth", depth, minimum=1, maximum=16)
        self.inverse_temperature = check_real(
            "inverse_temperature", inverse_temperature, minimum=0.0, exclusive_minimum=True
        )
        self.penalty_strength = check_real("penalty_strength", penalty_strength, minimum=0.0)
        self.penalty_decay = penalty_decay
        self.output = output
        self._warned_max_leaf = False
        self.input_shape = input_shape  # these two checked by __setattr__ (also when set later)
        self.feature_names = feature_names
        self.inner = nn.Linear(self.in_features, 2**self.depth - 1)
        self.leaf_logits = nn.Parameter(torch.randn(2**self.depth, self.num_classes) * 0.1)
        node_depth = torch.cat(
            [torch.full((2**level,), float(level)) for level in range(self.depth)]
        )
        # the weights are made from penalty_decay at each call: a decay set after construction
        # acts (as penalty_strength does)
        self.register_buffer("_node_depth", node_depth, persistent=False)
        self._pending = _PendingCalls()

    def __setattr__(self, name: str, value) -> None:
        # beta and lambda set after construction are checked as the constructor checks them (a
        # negative or NaN value would train a wrong tree, or none of the penalty, silently); a
        # learned beta, an nn.Parameter, is torch's to register, as any parameter
        bounds = _CHECKED_ON_SET.get(name)
        # a learned setting (an nn.Parameter) or a registered buffer is torch's to assign
        if bounds is not None and not torch_assigns(self, name, value):
            value = check_real(name, value, **bounds)
        # the parameters are sized from these: set later, num_classes disagreed with the
        # leaves' logits silently and depth failed in the forward pass with a torch error
        refuse_fixed_setting(self, name, value, _SIZES, "the tree's parameters are sized from it")
        # checked against in_features as at construction: set later, names of the wrong number
        # had named the features of explanations wrongly, silently
        if name == "input_shape":
            value = _check_input_shape(value, self.in_features)
        elif name == "feature_names":
            value = _check_feature_names(value, self.in_features)
        super().__setattr__(name, value)

    @property
    def penalty_decay(self) -> float:
        """The balance penalty's factor per level of depth (checked when set)."""
        return self._penalty_decay

    @penalty_decay.setter
    def penalty_decay(self, value) -> None:
        self._penalty_decay = check_real("penalty_decay", value, minimum=0.0)

    @property
    def output(self) -> str:
        """``"mixture"`` or ``"max_leaf"``: what ``forward`` predicts (checked when set)."""
        return self._output

    @output.setter
    def output(self, value) -> None:
        # set after training to predict from one path: a misspelt value would read as "mixture"
        self._output = check_choice("output", value, ("mixture", "max_leaf"))

    @property
    def balance_penalty(self) -> Tensor | None:
        """The balance penalty of the training calls since the last read or backward pass."""
        pending = self._pending
        if pending.penalty is None and pending.calls:
            log_nodes, activation = (torch.cat(parts) for parts in zip(*pending.calls))
            pending.penalty = self._balance_penalty(log_nodes, activation)
        return pending.penalty

    @balance_penalty.setter
    def balance_penalty(self, value: None) -> None:
        if value is not None:
            fail(
                "balance_penalty",
                "None (to forget the training calls' penalty; it is computed from them)",
                value,
                TypeError,
            )
        self._pending = _PendingCalls()

    @property
    def split_weights(self) -> Tensor:
        """The inner nodes' filters, ``inner.weight`` (``[2**depth - 1, in_features]``): the
        weights :class:`~lightning_distill.kd.constraints.L1Sparsity` penalises in a tree, for
        splits that read few inputs (the leaves' logits are left alone)."""
        return self.inner.weight

    @property
    def n_leaves(self) -> int:
        return 2**self.depth

    # ----------------------------------------------------------------- probabilities
    def _flatten(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            fail("x", "a torch.Tensor", type(x).__name__, TypeError)
        if not x.is_floating_point():
            fail("x", "a floating-point tensor", x.dtype, TypeError)
        if x.dim() == 0:  # no batch dimension (x.shape[0] would be torch's IndexError)
            fail(
                "x",
                f"a batch of inputs with {self.in_features} elements each (or one input, 1-D)",
                tuple(x.shape),
            )
        # the width from the shape, not -1: an empty batch has one too
        flat = x.reshape(x.shape[0], math.prod(x.shape[1:])) if x.dim() != 1 else x.unsqueeze(0)
        if flat.shape[1] != self.in_features:
            fail("x", f"a batch of inputs with {self.in_features} elements each", tuple(x.shape))
        dtype = self.inner.weight.dtype
        # autocast mixes the lower-precision dtypes, never float64
        mixed = autocast_on(flat.device.type) and torch.float64 not in (flat.dtype, dtype)
        if flat.dtype != dtype and not mixed:
            # torch's own error would name neither x nor the fix
            fail(
                "x",
                f"of the tree's dtype {dtype} (cast x or the tree; autocast does not cast float64)",
                flat.dtype,
                TypeError,
            )
        return flat

    def _log_paths(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log path probabilities of leaves ``[B, L]`` and of inner nodes ``[B, N]``, and the
        inner nodes' right-branch activations ``[B, N]``."""
        activation = self.inverse_temperature * self.inner(self._flatten(x))
        log_right, log_left = F.logsigmoid(activation), F.logsigmoid(-activation)
        log_reach = activation.new_zeros(activation.shape[0], 1)
        reached = []
        for level in range(self.depth):
            nodes = slice(2**level - 1, 2 ** (level + 1) - 1)
            reached.append(log_reach)
            # children of each node in order (left, right): interleave along the last axis
            log_reach = torch.stack(
                [log_reach + log_left[:, nodes], log_reach + log_right[:, nodes]], dim=2
            ).reshape(activation.shape[0], 2 ** (level + 1))
        return log_reach, torch.cat(reached, dim=1), activation

    def leaf_probabilities(self, x: Tensor) -> Tensor:
        """Path probabilities :math:`P^\\ell(x)` of the leaves, ``[batch, 2**depth]``; rows sum
        to 1."""
        return self._log_paths(x)[0].exp()

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities ``[batch, num_classes]`` (used as logits)."""
        log_leaves, log_nodes, activation = self._log_paths(x)
        log_q = F.log_softmax(self.leaf_logits, dim=1)
        if self.training and torch.is_grad_enabled() and self.penalty_strength > 0:
            self._pending = self._pending.add(log_nodes, activation)
        if self.output == "max_leaf":
            if (
                self.training
                and torch.is_grad_enabled()
                and not getattr(self, "_warned_max_leaf", False)
            ):
                self._warned_max_leaf = True
                warnings.warn(
                    "SoftDecisionTree(output='max_leaf') is being trained: the most probable "
                    "leaf passes no gradient to the inner nodes, so only the leaves learn (the "
                    "splits move under the balance penalty alone). Train with "
                    "output='mixture', as Frosst & Hinton do, then set tree.output = "
                    "'max_leaf' to predict from one path.",
                    UserWarning,
                    stacklevel=4,  # the caller of tree(x), past torch's call wrappers
                )
            # a row with a NaN input has no most probable leaf: NaN, as the mixture gives, not
            # the first leaf's distribution (argmax's answer for all-NaN rows)
            undefined = torch.isnan(log_leaves).any(dim=1, keepdim=True)
            return log_q[log_leaves.argmax(dim=1)].masked_fill(undefined, math.nan)
        return torch.logsumexp(log_leaves.unsqueeze(2) + log_q.unsqueeze(0), dim=1)

    def _balance_penalty(self, log_nodes: Tensor, activation: Tensor) -> Tensor:
        # alpha_i: the reach-weighted share of inputs sent right at node i, and 1 - alpha_i,
        # both in log space: a node that sends (nearly) every input one way keeps the
        # gradient that pushes it back (a clamp of alpha away from 0 and 1 zeroed it there)
        weights = self.penalty_decay ** self._node_depth.to(activation.dtype)
        if log_nodes.shape[0] == 0:  # no inputs, no split to balance
            return (weights * activation.sum(0)).sum() * 0.0
        # a node no input reaches (its path probability 0 on every row) has no share to
        # balance: it adds nothing (its logs would be -inf - -inf)
        # (no test of the mask on the host: that would wait for the device every step)
        reached = torch.isfinite(log_nodes.detach().amax(dim=0))  # log reach <= 0, never +inf
        log_nodes = torch.where(reached, log_nodes, torch.zeros_like(log_nodes))
        log_total = torch.logsumexp(log_nodes, dim=0)
        log_alpha = torch.logsumexp(log_nodes + F.logsigmoid(activation), dim=0) - log_total
        log_beta = torch.logsumexp(log_nodes + F.logsigmoid(-activation), dim=0) - log_total
        # floored at log 1e-30: a share of exactly 0 (an infinite activation) would make the
        # penalty infinite; above the floor, far past any trained tree, the gradient stays
        balance = 0.5 * (
            log_alpha.clamp_min(_LOG_SHARE_FLOOR) + log_beta.clamp_min(_LOG_SHARE_FLOOR)
        )
        balance = balance * reached
        return -self.penalty_strength * (weights * balance).sum()

    # ----------------------------------------------------------------- checkpoints
    def _settings(self) -> dict:
        """Plain data (``torch.load(weights_only=True)`` reads it back)."""
        return {
            "depth": int(self.depth),
            # a learned beta (an nn.Parameter) is read without its graph
            "inverse_temperature": _plain_value(self.inverse_temperature),
            "output": str(self.output),
            "penalty_strength": float(self.penalty_strength),
            "penalty_decay": float(self.penalty_decay),
            "input_shape": None if self.input_shape is None else [int(d) for d in self.input_shape],
            "feature_names": None if self.feature_names is None else list(self.feature_names),
        }

    def get_extra_state(self) -> dict:
        """The tree's settings, saved in its ``state_dict`` (and so in checkpoints)."""
        return self._settings()

    def set_extra_state(self, state) -> None:
        """Take the saved readout labels (``input_shape``, ``feature_names``) when this tree has
        none; the settings that change predictions are checked before any weight is copied
        (see :meth:`_load_from_state_dict`)."""
        if not isinstance(state, Mapping):
            return
        if self.input_shape is None and state.get("input_shape") is not None:
            self.input_shape = tuple(int(d) for d in state["input_shape"])
        if self.feature_names is None and state.get("feature_names") is not None:
            self.feature_names = [str(name) for name in state["feature_names"]]

    def _check_saved_settings(self, saved: Mapping, *, beta_loaded: bool = False) -> None:
        """The weights alone do not make the model: the same weights predict otherwise under
        another ``depth`` or ``inverse_temperature``, which is refused, whatever ``strict`` is
        (torch does not tell a module how it is being loaded); another ``output`` is allowed
        with a warning (a mixture-trained tree read by its most probable leaf is the paper's
        test-time use). The penalty settings only act in training, and this tree's own
        stand. ``beta_loaded``: this tree learns its beta (an ``nn.Parameter``) and the state
        holds the saved one, which the load copies in as it copies the weights (so the value
        this tree holds now is not compared)."""
        differ = []
        if "depth" in saved and int(saved["depth"]) != self.depth:
            differ.append(("depth", saved["depth"], self.depth))
        beta = saved.get("inverse_temperature")
        current = _plain_value(self.inverse_temperature)
        if (
            beta is not None
            and not beta_loaded
            and not math.isclose(float(beta), current, rel_tol=1e-6)
        ):
            differ.append(("inverse_temperature", beta, current))
        if differ:
            message = (
                "the saved SoftDecisionTree has "
                + ", ".join(f"{name}={old!r}" for name, old, _ in differ)
                + "; this one has "
                + ", ".join(f"{name}={new!r}" for name, _, new in differ)
                + ": the same weights would predict otherwise. Build the tree with the saved "
                "settings to load it."
            )
            raise ValueError(message)
        if "output" in saved and saved["output"] != self.output:
            warnings.warn(
                f"the saved SoftDecisionTree was trained with output={saved['output']!r}; this "
                f"one predicts with output={self.output!r} from the same weights.",
                UserWarning,
                stacklevel=2,
            )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "_extra_state"
        saved = state_dict.get(key)
        if isinstance(saved, Mapping):
            # before any of this tree's weights are copied: a refused load changes nothing here
            beta_loaded = (
                isinstance(self.inverse_temperature, Tensor)
                and prefix + "inverse_temperature" in state_dict
            )
            self._check_saved_settings(saved, beta_loaded=beta_loaded)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if key not in state_dict and key in missing_keys:
            # saved before trees kept their settings: this tree's own settings stand
            missing_keys.remove(key)
        learned = prefix + "inverse_temperature"
        if learned in unexpected_keys and not isinstance(self.inverse_temperature, Tensor):
            # a learned beta loaded into a tree built with that value as a fixed one (the
            # settings' check above refuses another value): the same predictions, nothing
            # left unread (torch's strict load had refused the key)
            saved_beta = state_dict[learned]
            if isinstance(saved_beta, Tensor) and math.isclose(
                float(saved_beta), _plain_value(self.inverse_temperature), rel_tol=1e-6
            ):
                unexpected_keys.remove(learned)

    def __getstate__(self):
        # The penalty's calls hold their graphs, which cannot be copied or pickled.
        state = self.__dict__.copy()
        state["_pending"] = _PendingCalls()
        return state

    def pop_balance_penalty(self) -> Tensor | None:
        """The balance penalty of the training calls since the last read (see
        :attr:`balance_penalty`), forgotten once read."""
        penalty, self.balance_penalty = self.balance_penalty, None
        return penalty

    # ----------------------------------------------------------------- readouts
    def path_to_leaf(self, leaf: int) -> list[tuple[int, str]]:
        """The ``(node, "left" | "right")`` steps from the root to ``leaf``."""
        leaf = check_integer("leaf", leaf, minimum=0, maximum=self.n_leaves - 1)
        node = leaf + self.n_leaves - 1  # position in the full breadth-first numbering
        steps = []
        while node > 0:
            parent = (node - 1) // 2
            steps.append((parent, "left" if node == 2 * parent + 1 else "right"))
            node = parent
        return steps[::-1]

    @torch.no_grad()
    def explain(self, x: Tensor) -> list[dict]:
        """The most probable leaf of each row and the path that leads there.

        The path explains the tree's decision completely only with ``output="max_leaf"``
        (the paper's test-time prediction). With ``output="mixture"`` the tree predicts from
        every leaf weighed by its path probability; when the most probable path holds little
        of the probability (soft splits: a small ``inverse_temperature``), its leaf can
        predict another class than the tree does. Each explanation therefore carries the
        tree's own prediction and whether the path agrees with it: read the path as *the*
        reason for a decision only where ``"agrees"`` is true and ``"path_probability"`` is
        high.

        Returns
        -------
        list of dict
            One per row: ``"leaf"`` (index of the argmax of :meth:`leaf_probabilities`),
            ``"path_probability"``, ``"nodes"`` (list of dicts with ``"node"``,
            ``"direction"`` (``"left"``/``"right"``), ``"probability"`` of that branch,
            ``"top_features"``: up to three inputs with the largest contribution
            :math:`\\beta w_{ij} x_j` towards the direction taken, only those whose
            contribution is positive (none when no input pushed that way, e.g. an all-zero row:
            the bias decided), ``"top_contributions"``, their contributions, and
            ``"bias_contribution"``, :math:`\\beta b_i` towards the direction taken; with the
            other inputs' contributions, which are not listed, they sum to the branch's logit
            signed towards the direction taken), ``"class_distribution"``
            of the leaf, ``"prediction"`` (its argmax), ``"model_prediction"`` (the class the
            tree predicts: the argmax of ``forward``, as ``output`` says) and ``"agrees"``
            (``prediction == model_prediction``).
        """
        flat = self._flatten(x)
        # a NaN or infinite input has no most probable path (argmax would name the first leaf)
        check_finite("x", flat)
        log_leaves, _, activation = self._log_paths(flat)
        model_predictions = self(flat).argmax(dim=1).tolist()
        right = torch.sigmoid(activation)
        leaf_distribution = F.softmax(self.leaf_logits, dim=1)
        contributions = (
            self.inverse_temperature * self.inner.weight.unsqueeze(0) * flat.unsqueeze(1)
        )
        bias = self.inverse_temperature * self.inner.bias.detach()
        names = self.feature_names or [f"x{j}" for j in range(self.in_features)]
        explanations = []
        for row, leaf in enumerate(log_leaves.argmax(dim=1).tolist()):
            nodes = []
            for node, direction in self.path_to_leaf(leaf):
                sign = 1.0 if direction == "right" else -1.0
                towards = sign * contributions[row, node]
                values, top = torch.topk(towards, k=min(3, self.in_features))
                # an input that pushed against the direction taken is no reason for it
                pushed = [(j, float(v)) for j, v in zip(top.tolist(), values.tolist()) if v > 0]
                probability = float(right[row, node])
                nodes.append(
                    {
                        "node": node,
                        "direction": direction,
                        "probability": probability if direction == "right" else 1 - probability,
                        "top_features": [names[j] for j, _ in pushed],
                        "top_contributions": [value for _, value in pushed],
                        "bias_contribution": sign * float(bias[node]),
                    }
                )
            distribution = leaf_distribution[leaf]
            explanations.append(
                {
                    "leaf": leaf,
                    "path_probability": float(log_leaves[row, leaf].exp()),
                    "nodes": nodes,
                    "class_distribution": distribution.tolist(),
                    "prediction": int(distribution.argmax()),
                    "model_prediction": model_predictions[row],
                    "agrees": int(distribution.argmax()) == model_predictions[row],
                }
            )
        return explanations

    def plot_filters(self, figure: Figure | None = None, *, class_names=None) -> Figure:
        """Draw the tree: each inner node's filter and each leaf's class distribution.

        Filters are images when ``input_shape`` has two (or three, channels first:
        ``(C, H, W)``, as torch lays images out) dimensions, bar charts over the inputs
        otherwise. A filter of several channels is drawn as its channels side by side (left to
        right, channel 0 first, a blank column between), never averaged: a node may weigh one
        channel against another. Nodes sit at their place in the tree.

        Parameters
        ----------
        figure : matplotlib.figure.Figure, optional
            Drawn on when given (e.g. a subfigure); a new figure otherwise (no ``pyplot``).
        class_names : sequence of str, optional
            One name per class (``num_classes``), under each leaf's bars; indices by default.

        Returns
        -------
        matplotlib.figure.Figure
        """
        if class_names is not None:
            # a numpy array or a pandas Index of names is as good as a list; a str would be
            # read as one name per character, a set has no order
            if (
                isinstance(class_names, str | set | frozenset)
                or not isinstance(class_names, Iterable)
                or getattr(class_names, "ndim", 1) != 1
            ):
                fail("class_names", "a sequence of str", class_names, TypeError)
            class_names = list(class_names)
            if len(class_names) != self.num_classes:
                fail(
                    "class_names",
                    f"one name per class ({self.num_classes})",
                    f"{len(class_names)} names",
                )
            class_names = [str(name) for name in class_names]
        if figure is not None and not isinstance(figure, FigureBase):
            fail(
                "figure",
                "a matplotlib Figure or SubFigure to draw on (or None for a new one)",
                figure,
                TypeError,
            )
        n_leaves = self.n_leaves
        if figure is None:
            figure = Figure(
                figsize=(max(6.0, 1.3 * n_leaves), 1.6 * (self.depth + 1)), layout="constrained"
            )
        weights = self.inner.weight.detach().cpu().float()
        biases = self.inner.bias.detach().cpu().float()
        leaves = F.softmax(self.leaf_logits.detach().cpu().float(), dim=1)
        image = self.input_shape is not None and len(self.input_shape) in (2, 3)
        grid = figure.add_gridspec(self.depth + 1, n_leaves)
        limit = float(weights.abs().max()) or 1.0
        for level in range(self.depth):
            span = n_leaves // 2**level
            for position in range(2**level):
                node = 2**level - 1 + position
                # centred under its subtree, at most two leaf columns wide
                width = min(span, 2)
                first = position * span + (span - width) // 2
                ax = figure.add_subplot(grid[level, first : first + width])
                filt = weights[node]
                if image:
                    ax.imshow(
                        _channels_side_by_side(filt.reshape(self.input_shape)).numpy(),
                        cmap="RdBu_r",
                        vmin=-limit,
                        vmax=limit,
                    )
                    ax.set_xticks([])
                    ax.set_yticks([])
                else:
                    colours = ["tab:red" if w > 0 else "tab:blue" for w in filt.tolist()]
                    ax.bar(range(self.in_features), filt.numpy(), color=colours)
                    ax.set_ylim(-limit, limit)
                    ax.axhline(0.0, color="black", linewidth=0.5)
                    if self.feature_names is not None and width >= 2:
                        ax.set_xticks(range(self.in_features))
                        ax.set_xticklabels(self.feature_names, rotation=90, fontsize=6)
                    else:
                        ax.set_xticks([])
                    ax.tick_params(labelsize=6)
                ax.set_title(f"node {node}: b = {float(biases[node]):+.2g}", fontsize=7)
        classes = class_names or [str(k) for k in range(self.num_classes)]
        for leaf in range(n_leaves):
            ax = figure.add_subplot(grid[self.depth, leaf])
            ax.bar(range(self.num_classes), leaves[leaf].numpy(), color="tab:gray")
            ax.set_ylim(0, 1)
            ax.set_xticks(range(self.num_classes))
            ax.set_xticklabels(classes, fontsize=5, rotation=90 if len(classes) > 4 else 0)
            ax.set_yticks([])
            ax.set_title(f"leaf {leaf}: {classes[int(leaves[leaf].argmax())]}", fontsize=7)
        figure.suptitle(
            "Soft decision tree: node filters (red +, blue -; right branch where w·x + b > 0) "
            "and leaf class distributions",
            fontsize=8,
        )
        return figure


class _PendingCalls:
    """The ``(log_nodes, activation)`` of a tree's training calls whose balance penalty is
    still to be read, and the penalty once computed. ``spent`` (a one-item list, set by a hook
    on the calls' activations that holds it alone: no reference cycle through the graph) says
    that a backward pass went through one of them: the step they belong to is over, and the
    next call starts afresh, so a tree whose penalty nobody pops holds one step's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Tensor, Tensor]] = []
        self.penalty: Tensor | None = None
        self.spent = [False]

    def add(self, log_nodes: Tensor, activation: Tensor) -> _PendingCalls:
        """These calls and one more (a fresh record after a backward pass)."""
        pending = _PendingCalls() if self.spent[0] else self
        pending.calls.append((log_nodes, activation))
        pending.penalty = None
        if activation.requires_grad:
            spent = pending.spent

            def mark_spent(grad: Tensor) -> None:
                spent[0] = True

            activation.register_hook(mark_spent)
        return pending


def _channels_side_by_side(picture: Tensor) -> Tensor:
    """``[H, W]`` as is; ``[C, H, W]`` as ``[H, C * W + C - 1]``: the channels left to right,
    a NaN column (drawn blank) between two."""
    if picture.dim() == 2:
        return picture
    gap = picture.new_full((picture.shape[1], 1), float("nan"))
    columns = []
    for index, channel in enumerate(picture):
        if index:
            columns.append(gap)
        columns.append(channel)
    return torch.cat(columns, dim=1)
