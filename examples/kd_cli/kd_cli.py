"""Knowledge distillation from the command line with LightningCLI and YAML configs.

Step 1 trains a teacher on the labels (``DistillationModule`` without a teacher is the plain
supervised baseline); step 2 loads that trained teacher from its checkpoint and distils it into
a smaller student:

    cd examples/kd_cli
    python kd_cli.py fit --config teacher.yaml     # writes checkpoints/teacher.ckpt
    python kd_cli.py fit --config distil.yaml      # reads it, writes checkpoints/student.ckpt

Every setting is in the YAML files and can be overridden on the command line, e.g.
``--model.temperature=2.0`` or ``--trainer.max_epochs=5``; ``python kd_cli.py fit --help`` lists
them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from lightning.pytorch.cli import LightningCLI

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the YAML names digits.MLP

from digits import DigitsData

from lightning_distill import DistillationModule

# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)


def main(args=None) -> LightningCLI:
    """Run the CLI (``args`` as a list of strings for use from Python; None reads sys.argv)."""
    torch.set_num_threads(1)
    return LightningCLI(
        DistillationModule,
        DigitsData,
        args=args,
        save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    main()
