"""Rank and world size of the current process, shared by the monitors (private)."""

from __future__ import annotations

import torch


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialised process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
