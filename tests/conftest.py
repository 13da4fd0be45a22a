import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The test models are tiny: on 2 cores, intra-op threads cost far more than they save (a small
# convolution ran about 7x slower with 2 threads than with 1 on a loaded machine). Set before
# torch is imported by any test module; subprocesses (DDP tests) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
