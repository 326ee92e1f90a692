"""Memory that just works: what the models need, what the machine has, and the plan between them.

* :mod:`.sizes` — exact component sizes, from the real configs instantiated on the meta device;
* :mod:`.activations` — activation memory as a function of tokens and pixels (and :mod:`.trace`, which
  measures it by running the real model code on meta tensors);
* :mod:`.plan` — sizes + hardware + request → :class:`~.plan.MemoryPlan`, the fastest plan that fits;
  :mod:`.planner` — the service the studio holds (probing, sizing, keeping a resident placement);
* :mod:`.apply` — a plan → diffusers' own offload, layerwise-casting, quantization and tiling calls;
* :mod:`.report` — what a job really used (measured around the job, written to the log and metadata).

Planning only: this package reads the registry, the settings, the hardware and the models' configs
(:mod:`imagestudio.models`), and never loads or runs a pipeline: the engine does that with its plans
(:mod:`imagestudio.engine.planned_jobs` steps down after out-of-memory). An import-linter contract in
pyproject.toml keeps it so.

Importing this package is cheap: torch and diffusers are imported inside the functions that need them.
"""
