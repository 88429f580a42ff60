"""The run model both front ends fill and the estimate reads: a model's shape, one process's
step, the whole run, the analytical peak-memory estimate, and launch lines (`torchrun
--nproc_per_node`). Imports only `facts`."""
