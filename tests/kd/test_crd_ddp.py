from pathlib import Path

import pytest

from tests.helpers import run_ddp_script

SCRIPT = Path(__file__).with_name("crd_ddp_script.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_crd_under_ddp_with_two_cpu_processes_matches_one_process(tmp_path):
    single = run_ddp_script(SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(SCRIPT, 2, tmp_path / "ddp.json")
    assert single.pop("world_size") == 1 and double.pop("world_size") == 2
    assert single.pop("steps") == double.pop("steps") == 12
    # every process updated its bank with the whole global batch, once per step
    assert single.pop("crd_steps") == double.pop("crd_steps") == 12
    assert double.pop("bank") == pytest.approx(single.pop("bank"), abs=1e-5)
    for key in ("bank_teacher_sum", "weight_sum", "head_sum"):
        assert double.pop(key) == pytest.approx(single.pop(key), rel=1e-5), key
    assert double.pop("normalizers") == pytest.approx(single.pop("normalizers"), rel=1e-6)
    assert set(single) == {"val/loss", "val/acc", "val/teacher_agreement", "val/teacher_acc"}
    assert set(double) == set(single)
    for key in ("val/acc", "val/teacher_agreement", "val/teacher_acc"):
        assert double[key] == pytest.approx(single[key], abs=1e-6), key
    assert double["val/loss"] == pytest.approx(single["val/loss"], rel=1e-4)
