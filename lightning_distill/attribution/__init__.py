"""Attribution-based interpretability metrics (five-band scores, localisation, agreement, DiffROAR)."""
