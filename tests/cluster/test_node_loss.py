"""A box leaves mid-job and another joins: a multi-node Ray cluster on one machine (``ray.cluster_utils``).

Each node is a real raylet with its own worker processes, all on 127.0.0.1. The head's pool notices the
node that joins after it started; removing the node that runs the job kills its raylet and workers,
the job's stream fails with Ray's own error, and the job runs again on the other node, recorded once.
"""

from __future__ import annotations

import time
from pathlib import Path

from imagestudio.jobs.model import JobState
from tests.cluster.test_ray_backend import WAIT, generate, settings_for
from tests.helpers import wait_until


def test_a_removed_node_s_job_reruns_on_the_other_node(
    ray_environment: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from imagestudio.cluster.ray_pool import RayClusterQueue
    from imagestudio.cluster.runtime import NAMESPACE, SLOT
    from imagestudio.history.recorder import HistoryRecorder
    from imagestudio.history.store import HistoryStore

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    queue = history = None
    try:
        first = cluster.add_node(num_cpus=1, resources={SLOT: 1})
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        settings = settings_for(tmp_path, shared_models_dir, address=cluster.address)
        history = HistoryStore(settings.history_db, settings.outputs_dir)
        queue = RayClusterQueue(settings, recorder=HistoryRecorder(history), start_runtime=False)
        queue.start()
        wait_until(lambda: len(queue.workers()) == 1, WAIT, "the first node's worker")
        second = cluster.add_node(num_cpus=1, resources={SLOT: 1})
        wait_until(lambda: len(queue.workers()) == 2, WAIT, "the joining node's worker")

        job = queue.submit(generate(settings, "moving house", width=128, height=128, steps=50))
        status = wait_until(
            lambda: next((s for s in queue.workers() if s.job == job.id), None), WAIT, "the job's worker"
        )
        node_id = queue.worker(status.name).node_id
        doomed = next(node for node in (first, second) if node.node_id == node_id)
        wait_until(lambda: (queue.get(job.id).progress or _Zero).step >= 1, WAIT, "a step")
        removed = time.perf_counter()
        cluster.remove_node(doomed)
        final = queue.wait(job.id, WAIT)
        print(f"\n[measure] node removed: job done {time.perf_counter() - removed:.1f}s later")
        assert final.state is JobState.DONE, final.error
        assert history.get_job(job.id).state is JobState.DONE
        assert len(history.get_job(job.id).images) == 1
        assert history.list_images(limit=10).total == 1
        assert history.job_details(job.id)["timings"]["attempts"] == 2
        assert len(queue.workers()) == 1
    finally:
        if queue is not None:
            queue.stop(30)
        if history is not None:
            history.close()
        ray.shutdown()
        cluster.shutdown()


class _Zero:
    step = 0
