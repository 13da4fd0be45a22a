"""Knowledge distillation, network dissection and adaptive wavelet distillation for Lightning."""

__version__ = "0.1.0.dev0"
