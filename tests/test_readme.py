"""Every Python snippet of README.md runs as written and prints what the README shows.

The snippets are read from the README itself, so a snippet added there is run here. A snippet
that uses objects the reader brings (``student``, ``teacher``, ``train_loader``, ...: the
README names them as the reader's) runs with small stand-ins built below; anything else it
uses, imports included, must be in the snippet. A snippet followed directly by an unlabelled
fenced block must print that block, numbers equal to the precision printed there.

Snippets that take minutes (the COMPAS audit with refits, DiffROAR's retraining, a Dask cluster)
run with ``README_SNIPPETS=all`` (``make readme``); the others run in every test session.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN_ALL = os.environ.get("README_SNIPPETS") == "all"


# ------------------------------------------------------------------------------ parsing
def _snippets() -> list[tuple[str, str, str | None]]:
    """(name, code, expected output or None) of every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    found = []
    heading = "top"
    position = 0
    pattern = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)
    for match in pattern.finditer(text):
        # headings between the previous snippet and this one, outside other fenced blocks
        fenced = False
        for line in text[position : match.start()].splitlines():
            if line.startswith("```"):
                fenced = not fenced
            elif line.startswith("#") and not fenced:
                heading = line.lstrip("# ").strip()
        position = match.end()
        after = re.match(r"\n*```\n(.*?)^```", text[match.end() :], re.S | re.M)
        expected = after.group(1) if after else None
        line = text.count("\n", 0, match.start()) + 1
        found.append((f"line {line}: {heading}", match.group(1), expected))
    return found


_NUMBER = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)(?:[eE]([-+]?\d+))?")


def _form(match: re.Match) -> tuple[int, int]:
    """(digits after the point, exponent or 0) of a number as printed."""
    mantissa, exponent = match.group(1), match.group(2)
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return decimals, int(exponent) if exponent is not None else 0


def assert_same_output(printed: str, expected: str) -> None:
    """The printed text equals the expected one; numbers are printed in the same form (digits
    after the point, exponent) and agree to one unit of their last digit (a rounding flip),
    whole numbers exactly."""
    got, want = printed.split(), expected.split()
    assert len(got) == len(want), f"printed\n{printed}\nexpected\n{expected}"
    for a, b in zip(got, want):
        message = f"{a!r} printed, {b!r} expected"
        assert _NUMBER.sub("#", a) == _NUMBER.sub("#", b), message
        for x, y in zip(_NUMBER.finditer(a), _NUMBER.finditer(b)):
            assert _form(x) == _form(y), message
            decimals, exponent = _form(y)
            unit = 10.0 ** (exponent - decimals) if decimals else 0.0
            gap = abs(float(x.group(0)) - float(y.group(0)))
            assert gap <= unit * (1 + 1e-9), message


# ---------------------------------------------------------------------------- stand-ins
def _cnn(channels: int, width: int, classes: int = 10) -> nn.Module:
    """A small CNN with the submodule names the snippets use (layer3, features.relu3,
    flatten)."""
    features = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(channels, width, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(width, width, 3, padding=1),
            relu2=nn.ReLU(),
            conv3=nn.Conv2d(width, 64, 3, padding=1),
            relu3=nn.ReLU(),
        )
    )
    return nn.Sequential(
        OrderedDict(
            features=features,
            layer3=nn.Identity(),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            head=nn.Linear(64, classes),
        )
    )


def _image_data(n: int = 128, channels: int = 3, size: int = 16):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, channels, size, size, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    return x, y, TensorDataset(x, y)


def _my_module(student):
    """The reader's own LightningModule for the callback snippet: cross-entropy on ``student``."""
    import lightning as L

    class MyModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = student

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    return MyModule()


def kd_context() -> dict:
    torch.manual_seed(0)
    x, _, train_set = _image_data()
    student, teacher = _cnn(3, 8), _cnn(3, 16)
    loader = DataLoader(train_set, batch_size=64)
    return {
        "student": student,
        "teacher": teacher,
        "x": x,
        "train_set": train_set,
        "train_loader": loader,
        "val_loader": DataLoader(train_set, batch_size=64),
        "my_module": _my_module(student),
    }


def tabular_context() -> dict:
    torch.manual_seed(0)

    def mlp():
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))

    return {
        "student": mlp(),
        "teacher": mlp(),
        "grid": torch.rand(64, 5),
        "digits_teacher": nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
        "x": torch.rand(16, 1, 8, 8),
    }


def dissection_context() -> dict:
    from lightning_distill import DistillationModule
    from lightning_distill.datasets import SyntheticConcepts

    torch.manual_seed(0)
    train = SyntheticConcepts(64, seed=0)
    model = _cnn(3, 8, classes=len(train.class_names))
    probe = DataLoader(SyntheticConcepts(100, seed=2), batch_size=50)
    return {
        "model": model,
        "probe": probe,
        "module": DistillationModule(
            _cnn(3, 8, len(train.class_names)), _cnn(3, 16, len(train.class_names))
        ),
        "train_loader": DataLoader(train.classification(), batch_size=32),
    }


def attribution_context() -> dict:
    from lightning_distill import DistillationModule
    from lightning_distill.datasets import SyntheticCells

    torch.manual_seed(0)
    cells = SyntheticCells(64, seed=0)
    student, teacher = _cnn(3, 8), _cnn(3, 16)
    return {
        "student": student,
        "teacher": teacher,
        "make_student": lambda: _cnn(1, 8),
        "digit_model": _cnn(1, 8),
        "distillation_module": DistillationModule(student, teacher),
        "loader": DataLoader(cells.classification(), batch_size=32),
    }


def awd_context() -> dict:
    spec = importlib.util.spec_from_file_location(
        "awd_simulation", ROOT / "examples" / "awd_simulation.py"
    )
    simulation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulation)
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = simulation.simulate(3000, rng)
    teacher = simulation.train_teacher(X, y, epochs=30, seed=0)
    X_test, y_test = simulation.simulate(1000, rng)
    return {"teacher": teacher, "X": torch.from_numpy(X).float(), "y": y, "_test": (X_test, y_test)}


def check_awd(namespace: dict) -> None:
    """The quickstart predicts as the README's simulation table says (top-3 attributed,
    db5: test R^2 0.999)."""
    X_test, y_test = namespace["_test"]
    assert namespace["model"].score(X_test, y_test) > 0.98


# (text the snippet contains, stand-ins, check run afterwards, slow)
CONTEXTS = [
    ('loss="attention", weight=1000.0', kd_context, None, False),
    ("KnowledgeDistillation(teacher, temperature", kd_context, None, False),
    ('"crd", 0.8', kd_context, None, False),
    ("constraints=[Monotonic(", tabular_context, None, False),
    ("metric = NetworkDissection(", dissection_context, None, False),
    ("DissectionMonitor(probe", dissection_context, None, False),
    ("diff_roar(make_student", attribution_context, None, True),
    ("AttributionMonitor(DataLoader", attribution_context, None, False),
    ("AWDModule(teacher", awd_context, check_awd, False),
]
SLOW = ("audit.stability(", "parallel_config(backend=")


def _plan(code: str):
    matches = [entry for entry in CONTEXTS if entry[0] in code]
    assert len(matches) <= 1, "a snippet matched two contexts"
    if matches:
        return matches[0][1:]
    return None, None, any(marker in code for marker in SLOW)


SNIPPETS = _snippets()


def test_readme_has_snippets_and_every_context_is_used():
    assert len(SNIPPETS) >= 10
    codes = [code for _, code, _ in SNIPPETS]
    for key, *_ in CONTEXTS:
        assert sum(key in code for code in codes) == 1, f"no single snippet contains {key!r}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "expected"),
    [pytest.param(code, expected, id=name) for name, code, expected in SNIPPETS],
)
def test_readme_snippet(code, expected, tmp_path, monkeypatch):
    context, check, slow = _plan(code)
    if slow and not RUN_ALL:
        pytest.skip("takes minutes: run with README_SNIPPETS=all (make readme)")
    monkeypatch.chdir(tmp_path)  # files the snippet writes land here
    namespace = {"__name__": "__main__"}  # as a script run by the reader
    if context is not None:
        namespace.update(context())
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.simplefilter("ignore")
            exec(compile(code, "README.md", "exec"), namespace)
    finally:
        client = namespace.get("client")  # a Dask client the snippet started, and its cluster
        if client is not None and hasattr(client, "cluster"):
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    if expected is not None:
        assert_same_output(printed.getvalue(), expected)
    if check is not None:
        check(namespace)


def test_assert_same_output_reads_numbers_to_their_printed_precision():
    assert_same_output("r2 0.400 [1.0, 2] 1.5e-03", "r2 0.399 [1.0, 2] 1.4e-03")
    for printed, expected in [
        ("r2 0.401", "r2 0.399"),  # two units of the last digit
        ("auc 0.399", "r2 0.399"),  # other text
        ("0.399 1", "0.399"),  # other length
        ("id 1", "id 0"),  # whole numbers exactly
        ("5 of 658", "5 of 657"),
        ("0.4", "0.399"),  # fewer digits
        ("1", "1.0"),
        ("r2 0.3991", "r2 0.399"),  # more digits
        ("p 0.5", "p 1e-05"),  # another form
        ("0.9e-3", "1.5e-03"),
    ]:
        with pytest.raises(AssertionError):
            assert_same_output(printed, expected)
