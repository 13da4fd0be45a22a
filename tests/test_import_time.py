"""Optional heavy dependencies load only when their capability is used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("captum", "pywt", "matplotlib")


def loaded_after(code: str) -> dict:
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps({'all': sorted(sys.modules), 'new': sorted(set(sys.modules) - before)}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def roots(names) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_import_lightning_distill_loads_no_captum_pywt_or_matplotlib():
    modules = roots(loaded_after("import lightning_distill")["all"])
    assert not modules & set(HEAVY), modules & set(HEAVY)
    assert "lightning" not in modules  # the names load on first use


def test_knowledge_distillation_adds_nothing_heavy_to_lightning():
    # Lightning itself (through torchmetrics) may load matplotlib: what the kd names add to it
    # must hold none of the optional dependencies nor pandas
    found = loaded_after(
        "import lightning\n"
        "before = set(sys.modules)\n"
        "from lightning_distill import DistillationModule, KnowledgeDistillation"
    )
    added = roots(found["new"])
    assert "lightning_distill" in added
    assert not added & {*HEAVY, "pandas", "sklearn"}, added & {*HEAVY, "pandas", "sklearn"}
    assert not roots(found["all"]) & {"captum", "pywt"}
