"""Several GPU workers behind one studio: the ``cluster.backend: ray`` job queue.

Nothing here is imported on the single-PC path. The pieces, from pure to Ray-bound:

* ``scheduling`` — which waiting job an idle worker takes (model affinity); pure Python.
* ``queue`` — ``ClusterQueue``, the head's job queue over any set of workers; pure Python, so its
  rules are tested with in-process workers.
* ``ray_worker`` / ``ray_pool`` — the worker actor (one per GPU, holding a Studio) and the pool that
  creates one per advertised slot on every live Ray node; these import Ray.
* ``runtime`` — starting or joining the Ray runtime (loopback for ``cluster.local_workers``).
"""
