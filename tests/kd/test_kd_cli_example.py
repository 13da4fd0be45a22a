"""examples/kd_cli: the LightningCLI script trains a teacher, then distils it from its checkpoint."""

import importlib.util
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kd_cli"
QUICK = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_model_summary=false",
]


def _load_cli():
    spec = importlib.util.spec_from_file_location("kd_cli_example", EXAMPLE / "kd_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_teacher_then_distillation_from_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the YAML's checkpoint paths are relative
    cli = _load_cli()
    teacher_run = cli.main(["fit", "--config", str(EXAMPLE / "teacher.yaml"), *QUICK])
    assert teacher_run.model.teacher is None and teacher_run.model.hparams.alpha == 0.0
    path = tmp_path / "checkpoints" / "teacher.ckpt"
    trained = torch.load(path, weights_only=True)["state_dict"]

    distil = cli.main(["fit", "--config", str(EXAMPLE / "distil.yaml"), *QUICK])
    module = distil.model
    assert module.hparams.temperature == 4.0 and module.hparams.alpha == 0.9
    # the teacher is the trained network, read from the checkpoint and left as it was
    teacher_state = module.teacher.state_dict()
    assert teacher_state.keys() == {k[len("student.") :] for k in trained}
    for key, value in teacher_state.items():
        assert torch.equal(value, trained[f"student.{key}"])
    assert module.teacher.training  # given back in its own mode after the fit
    assert {"val/acc", "val/teacher_agreement"} <= set(distil.trainer.callback_metrics)
    # the same network on the same validation batch: the accuracy the teacher's own run reported
    torch.testing.assert_close(
        distil.trainer.callback_metrics["val/teacher_acc"],
        teacher_run.trainer.callback_metrics["val/acc"],
    )
    student = torch.load(tmp_path / "checkpoints" / "student.ckpt", weights_only=True)
    assert not any(k.startswith("teacher.") for k in student["state_dict"])


def test_bad_data_flags_are_refused_before_training_naming_the_flag():
    import sys

    import pytest

    sys.path.insert(0, str(EXAMPLE))
    try:
        from digits import DigitsData
    finally:
        sys.path.remove(str(EXAMPLE))
    for kwargs, flag in (
        ({"val_fraction": 0.0}, "--data.val_fraction must be in"),
        ({"val_fraction": 1.5}, "--data.val_fraction must be in"),
        ({"seed": -1}, "--data.seed must be an integer >= 0"),
        ({"batch_size": 0}, "--data.batch_size must be an integer >= 1"),
    ):
        with pytest.raises(ValueError, match=flag):
            DigitsData(**kwargs)
    DigitsData(batch_size=8, val_fraction=0.5, seed=3)
