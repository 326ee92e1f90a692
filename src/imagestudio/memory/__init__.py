"""Memory that just works: what the models need, what the machine has, and the plan between them.

* :mod:`.sizes` — exact component sizes, from the real configs instantiated on the meta device;
* :mod:`.activations` — activation memory as a function of tokens and pixels (and :mod:`.trace`, which
  measures it by running the real model code on meta tensors);
* :mod:`.plan` — sizes + hardware + request → :class:`~.plan.MemoryPlan`, the fastest plan that fits;
  :mod:`.planner` — the service the studio holds (probing, sizing, keeping a resident placement);
* :mod:`.apply` — a plan → diffusers' own offload, layerwise-casting, quantization and tiling calls;
* :mod:`.log` — what a job really used; :mod:`.oom` — stepping down and retrying after out-of-memory;
* :mod:`.bench` — full-size random-weight pipelines to measure plans on a GPU; :mod:`.table` — the
  prediction tables of docs/memory.md.

Importing this package is cheap: torch and diffusers are imported inside the functions that need them.
"""
