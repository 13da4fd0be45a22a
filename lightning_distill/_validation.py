"""Argument checks shared by the Lightning side.

Every message has one form: ``"<name> must be <constraint>; got <value>."`` (the
value's repr, or the dtype and shape of a larger tensor or array), raised as
``TypeError`` for a value of the wrong type and ``ValueError`` for a value of the right type
outside its range. Zero-dimensional tensors count as numbers.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar

import numpy as np
import torch
from torch import Tensor


def describe(value) -> str:
    """A short description of a value for an error message: its repr, unless it is a tensor or
    array of more than a few elements (then its dtype and shape) or the repr is long."""
    if isinstance(value, Tensor | np.ndarray):
        count = value.numel() if isinstance(value, Tensor) else value.size
        if count > 8:
            kind = "tensor" if isinstance(value, Tensor) else "array"
            return f"a {kind} of dtype {value.dtype} and shape {tuple(value.shape)}"
    if isinstance(value, tuple | list) and any(
        isinstance(item, Tensor | np.ndarray) for item in value
    ):
        items = ", ".join(describe(item) for item in value[:4])
        more = f", ... ({len(value)} in all)" if len(value) > 4 else ""
        return f"a {type(value).__name__} of ({items}{more})"
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:160]} ... ({type(value).__name__})"


def check_trainer_kwargs(name: str, kwargs, reserved: tuple[str, ...] = ()) -> dict:
    """A dict of ``lightning.Trainer`` arguments (a misspelt one named before any work), none of
    them ``reserved`` (set by the caller's own arguments); returns a copy."""
    import inspect

    import lightning as L

    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        fail(name, "a dict of lightning.Trainer arguments", kwargs, TypeError)
    known = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        fail(name, "arguments of lightning.Trainer", unknown, TypeError)
    taken = sorted(set(kwargs) & set(reserved))
    if taken:
        fail(
            name,
            f"without {', '.join(map(repr, taken))} (set by this function's own arguments)",
            taken,
        )
    return dict(kwargs)


def fail(name: str, constraint: str, value, error: type[Exception] = ValueError):
    """Raise ``error`` with the house message form."""
    raise error(f"{name} must be {constraint}; got {describe(value)}.")


def check_bool(name: str, value) -> bool:
    """``value``, a Python bool (a truthy 1 or "yes" refused, naming ``name``)."""
    if not isinstance(value, bool):
        fail(name, "a bool", value, TypeError)
    return value


def _as_python_number(value):
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        return value.item()
    return value


def check_integer(
    name: str, value, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer (not a bool) within ``[minimum, maximum]``; returns it as ``int``."""
    number = _as_python_number(value)
    constraint = "an integer" + _bounds(minimum, maximum)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        fail(name, constraint, value, TypeError)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        fail(name, constraint, value)
    return int(number)


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> float:
    """A finite real number (not a bool) within the given bounds; returns it as ``float``."""
    number = _as_python_number(value)
    bounds = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        fail(name, "a real number" + bounds, value, TypeError)
    number = float(number)
    too_low = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    too_high = maximum is not None and (
        number >= maximum if exclusive_maximum else number > maximum
    )
    if not math.isfinite(number) or too_low or too_high:
        fail(name, "a finite number" + bounds, value)
    return number


def check_choice(name: str, value, choices: Iterable):
    """One of ``choices``."""
    choices = tuple(choices)
    if isinstance(value, str | int | float | type(None)) and value in choices:
        return value
    fail(name, "one of " + ", ".join(map(repr, choices)), value)


def is_listed(value) -> bool:
    """Whether ``value`` lists items one by one: a sequence other than a ``str``, or a 1-D
    array-like (a numpy array, a pandas Index, a tensor)."""
    if isinstance(value, str):
        return False
    return isinstance(value, Sequence) or getattr(value, "ndim", None) == 1


def check_float_tensor(name: str, value, min_dim: int = 2) -> None:
    """A floating-point tensor of at least ``min_dim`` dimensions, the first the batch's."""
    if not isinstance(value, Tensor):
        fail(name, "a torch.Tensor", type(value).__name__, TypeError)
    if not value.is_floating_point():
        fail(name, "a floating-point tensor", value.dtype, TypeError)
    if value.dim() < min_dim:
        shape = "a batch dimension" if min_dim == 1 else f"at least {min_dim} dimensions"
        fail(name, f"a tensor with {shape} [batch, ...]", tuple(value.shape))


def check_same_device(name: str, tensor: Tensor, reference_name: str, reference: Tensor) -> None:
    """Refuse ``tensor`` on another device than ``reference``: torch fails deep inside the
    computation then (or, for checks read later, at the host read)."""
    if tensor.device != reference.device:
        raise ValueError(
            f"{name} must be on the device of {reference_name} ({reference.device}); got "
            f"{tensor.device}. Move it there first: {name}.to({reference_name}.device)."
        )


def output_remedy(output) -> str:
    """What to do with a model's output that is not the tensor of logits: the entry or
    attribute that usually holds them (a tuple's first element, a dict's or a Hugging Face
    output's ``logits``), and a wrapper whose forward returns it."""
    if isinstance(getattr(output, "logits", None), Tensor):
        where = "its .logits attribute"
    elif isinstance(output, Mapping) and isinstance(output.get("logits"), Tensor):
        where = "its 'logits' entry"
    elif isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        where = "its first element, usually"
    else:
        where = None
    pick = f" (here {where})" if where else ""
    return f"wrap the model in an nn.Module whose forward returns the tensor of logits{pick}"


def check_finite(name: str, tensor: Tensor, *, where: str = "") -> None:
    """Raise ``ValueError`` when a floating tensor holds NaN or infinity (one device sync).

    A NaN or an infinity anywhere makes the sum NaN or infinite, so a finite sum clears the
    tensor with one reduction; only a non-finite sum (which finite values can also give, by
    overflow) is checked element by element.
    """
    if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum())):
        return
    _explain_not_finite(name, tensor, where)


def rows_without_a_class(logits: Tensor) -> Tensor:
    """Which rows of ``logits`` (N, classes) predict no class: a NaN or ``+inf`` entry (whose
    softmax is NaN), or no entry above ``-inf`` (``-inf`` alone marks a masked class). Their
    argmax would name a made-up class (the first NaN's, or class 0)."""
    return (torch.isnan(logits) | torch.isposinf(logits)).any(dim=1) | ~(
        logits > float("-inf")
    ).any(dim=1)


def check_finite_deferred(name: str, tensor: Tensor, *, where: str = "") -> None:
    """:func:`check_finite` read with the training step's other value checks: inside
    :func:`one_sync_per_step` its flag (the sum's) waits for the step's next
    :func:`settle_value_checks`; outside, it is read at once, as :func:`check_finite` reads it.
    Same error; the tensor must not change in place before the check settles."""
    if tensor.is_floating_point():
        value_check(
            ~torch.isfinite(tensor.detach().sum()),
            functools.partial(_explain_not_finite, name, tensor, where),
        )


def _explain_not_finite(name: str, tensor: Tensor, where: str) -> None:
    """The element-wise look behind a non-finite sum: raise unless finite values overflowed."""
    if not bool(torch.isfinite(tensor).all()):
        location = f" {where}" if where else ""
        raise ValueError(f"{name} must be finite{location}; got NaN or infinite values.")


# (flag, explain) pairs of the value checks of the current training step, or None outside one
_PENDING_CHECKS: ContextVar[list | None] = ContextVar("pending_value_checks", default=None)


def value_check(bad: Tensor, explain: Callable[[], None]) -> None:
    """Call ``explain`` (which raises the check's error, or returns when a closer look clears
    the values) when the boolean 0-d tensor ``bad`` is true.

    Reading ``bad`` makes the host wait for the device. Inside :func:`one_sync_per_step` the
    check waits instead for the step's next :func:`settle_value_checks`, which reads all the
    flags gathered so far in one sync; outside, it reads ``bad`` at once.
    """
    pending = _PENDING_CHECKS.get()
    if pending is None:
        if bool(bad):
            explain()
    else:
        pending.append((bad, explain))


def settle_value_checks() -> None:
    """Read every flag gathered in this step at once (one host sync) and raise the first
    failing check's error. A check whose values the device must not meet unchecked (class
    indices out of range, which CUDA answers with a device-side assert that ends the process's
    CUDA context) settles before using them."""
    pending = _PENDING_CHECKS.get()
    if not pending:
        return
    checks = list(pending)
    pending.clear()
    if len(checks) == 1:  # its flag as it is: no stack to build
        bad, explain = checks[0]
        if bool(bad):
            explain()
        return
    device = checks[0][0].device
    flags = torch.stack([bad.to(device) for bad, _ in checks])
    if not bool(flags.any()):
        return
    # some flag is set (a masked -inf logit that a closer look may clear): all of them in one
    # more read, not one each
    for flag, (_, explain) in zip(flags.tolist(), checks):
        if flag:
            explain()


@contextlib.contextmanager
def one_sync_per_step() -> Iterator[None]:
    """Gather the value checks made inside (finite logits, class indices in range) and read
    them in one host sync rather than one each: the host waits for the device once per
    training step (on a GPU each wait idles the device while the host launches the next
    kernels). The checks still settle before the step returns its loss, and the step settles
    them itself before it changes any state (a feature method's banks, the epoch means); when
    the step fails, a failing check's error is raised instead, from the step's."""
    token = _PENDING_CHECKS.set([])
    try:
        try:
            yield
        except Exception as error:
            # an error that bad values caused later in the step (a feature loss's own check)
            # gives way to the check that would have refused them first
            try:
                settle_value_checks()
            except (ValueError, TypeError) as refused:
                raise refused from error
            except Exception:
                pass  # the flags cannot be read (after a CUDA error): the step's error stands
            raise
        settle_value_checks()
    finally:
        _PENDING_CHECKS.reset(token)


def plain_data(value):
    """``value`` with every number, string and container a plain Python one, for
    hyperparameters, which checkpoints hold and ``torch.load(weights_only=True)`` must read: a
    numpy scalar (``np.float64`` from ``np.linspace``, which passes every check as a ``float``)
    or a zero-dimensional tensor becomes its Python number, a numpy array a list, a subclass of
    ``int``, ``float``, ``str``, ``list``, ``tuple`` or ``dict`` its base type, an enum member
    its value; anything else is returned as it is."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, enum.Enum):  # a (str, Enum) member's str() is "Kind.NAME"
        return plain_data(value.value)
    if isinstance(value, np.generic):
        return plain_data(value.item())
    if isinstance(value, Tensor) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.ndarray):
        return plain_data(value.tolist())
    for base in (int, float, str):  # bool has no subclasses
        if isinstance(value, base):
            return base(value)
    if isinstance(value, dict):
        return {plain_data(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return (list if isinstance(value, list) else tuple)(plain_data(item) for item in value)
    return value


def _bounds(minimum, maximum, exclusive_minimum=False, exclusive_maximum=False) -> str:
    parts = []
    if minimum is not None:
        parts.append(("> " if exclusive_minimum else ">= ") + str(minimum))
    if maximum is not None:
        parts.append(("< " if exclusive_maximum else "<= ") + str(maximum))
    return (" " + " and ".join(parts)) if parts else ""


def keeps_its_type(error: RuntimeError) -> bool:
    """Whether a ``RuntimeError`` raised by the user's model is not a complaint about its
    input, and so is re-raised as it is rather than as a ``ValueError`` naming the input: a
    subclass (CUDA's out-of-memory error and the like) or a failed allocation, which the CPU
    allocator raises as a plain ``RuntimeError``."""
    if type(error) is not RuntimeError:
        return True
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text


class CheckedSetting:
    """A setting checked by ``check(name, value)`` whenever it is set, in the constructor and
    after it, and kept as ``_<name>`` (a checked property without its boilerplate)."""

    def __init__(self, check: Callable, doc: str) -> None:
        self.check = check
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.private = name, f"_{name}"

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.private)

    def __set__(self, obj, value) -> None:
        setattr(obj, self.private, self.check(self.name, value))


def refuse_fixed_setting(
    obj, name: str, value, fixed: Sequence[str], made: str, argument: str | None = None
) -> None:
    """Refuse ``name``, one of the settings ``fixed`` at construction (``made`` says what is
    made from them), set again on ``obj``: an object's states or buffers sized or computed
    from it would no longer match (``AttributeError``, as for a read-only attribute).
    ``argument``: the constructor's argument that gives it, where it is named otherwise."""
    if name in fixed and name in obj.__dict__:
        kind = type(obj).__name__
        raise AttributeError(
            f"{name} is set at construction ({made}); got {describe(value)} for a {kind} "
            f"built with {name}={getattr(obj, name)!r}. Build a new "
            f"{kind}({argument or name}=...)."
        )


class _Fixed:
    """What :class:`FixedList` and :class:`FixedDict` share: built with the setting's name, the
    container's ``_base`` type with every edit in place refused (``_refuse``); built without
    one, a plain container of that type (a host library that rebuilds a container as
    ``type(value)(items)``, ``dataclasses.asdict``, gets data of its own to edit, dump to YAML or
    save for ``torch.load(weights_only=True)``)."""

    _base: type

    def __new__(cls, values=(), name: str = "", kind: str = "", made: str = "", argument=""):
        return cls._base.__new__(cls) if name else cls._base(values)

    def __init__(
        self, values=(), name: str = "", kind: str = "", made: str = "", argument: str = ""
    ) -> None:
        self._base.__init__(self, values)
        self._about = (name, kind, made, argument)

    def __reduce__(self):
        # rebuilt from its entries (the default rebuilds an empty one and fills it: refused)
        return type(self), (self._base(self), *self._about)

    def _refuse(self, *args, **kwargs):
        name, kind, made, argument = self._about
        raise TypeError(
            f"{name} is set at construction ({made}) and cannot be changed in place on a "
            f"{kind}. Build a new {kind}({argument or name}=...); "
            f"{self._base.__name__}({name}) gives a copy to edit."
        )


class FixedList(_Fixed, list):
    """A list setting fixed at construction, stored so that it cannot be changed in place
    either: it reads, compares (``== [...]``), copies and pickles as a list, and every edit in
    place (item assignment, ``append``, ``+=``, ``sort``, ...) raises a ``TypeError`` naming the
    setting, as :func:`refuse_fixed_setting` refuses setting it again. A copy to change is
    ``list(value)``. Built without a ``name`` it is a plain ``list``: ``dataclasses.asdict``
    rebuilds a list field as ``type(value)(items)``, and its result is data to edit and dump.

    Parameters
    ----------
    values : iterable
        The entries (copied).
    name, kind, made : str
        The setting's name, the class of the object that holds it, and what is made from it
        (for the message).
    argument : str, optional
        The constructor's argument that gives it, where it is named otherwise.
    """

    _base = list
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _Fixed._refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _Fixed._refuse


class FixedDict(_Fixed, dict):
    """A dict setting fixed at construction, the mapping counterpart of :class:`FixedList`: it
    reads, compares, copies and pickles as a dict (``**`` unpacks it), and every edit in place
    (item assignment, ``update``, ``pop``, ``|=``, ...) raises a ``TypeError`` naming the
    setting. A copy to change is ``dict(value)``. Built without a ``name`` it is a plain ``dict``
    (``dataclasses.asdict`` of a ``FeatureDistillation`` gives its ``options`` as one).

    Parameters
    ----------
    values : mapping
        The entries (copied).
    name, kind, made, argument : str
        As for :class:`FixedList`.
    """

    _base = dict
    __setitem__ = __delitem__ = __ior__ = _Fixed._refuse
    update = pop = popitem = clear = setdefault = _Fixed._refuse


def torch_assigns(module, name: str, value) -> bool:
    """Whether setting ``name`` to ``value`` on ``module`` is torch's own business, which a
    setting checked on assignment leaves alone: an ``nn.Parameter`` (a learned setting), or a
    name registered as a parameter or buffer (a schedule)."""
    return (
        isinstance(value, torch.nn.Parameter)
        or name in module.__dict__.get("_parameters", ())
        or name in module.__dict__.get("_buffers", ())
    )
