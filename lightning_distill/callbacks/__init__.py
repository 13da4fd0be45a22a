"""Lightning callbacks: distil into an existing module, log interpretability during training."""
