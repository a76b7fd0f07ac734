"""Two Ray nodes simulated on this machine (ray.cluster_utils.Cluster, one CPU each): the actors land on both
nodes (Ray Data counts the nodes its tasks ran on), and the output equals encode with every id once."""

from __future__ import annotations

import re

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from embedstack import SentenceTransformer  # noqa: E402
from embedstack.ray import embed_dataset  # noqa: E402
from helpers import bounded  # noqa: E402

pytestmark = pytest.mark.slow

ROWS = 200
TEXTS = [f"passage {i}: {' '.join(['text'] * (i % 19))} on theme {i % 5}" for i in range(ROWS)]


@pytest.fixture(scope="module")
def two_nodes():
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes(timeout=60)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_the_work_spreads_over_both_nodes(two_nodes, tiny_bert_path):
    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    # Two actors of one CPU each on two one-CPU nodes: one actor per node. The input needs no read task. Ray Data
    # starts handing out blocks once one actor is up; on a busy machine the first could take all eight blocks of the
    # tiny model before the second one starts, so this run waits for both actors first.
    context = ray.data.DataContext.get_current()
    waited, context.wait_for_min_actors_s = context.wait_for_min_actors_s, 120
    try:
        ds = ray.data.from_items([{"id": i, "text": text} for i, text in enumerate(TEXTS)], override_num_blocks=8)
        job = embed_dataset(ds, tiny_bert_path, actors=2, batch_size=25, reserve_cpus=0.0)
        out = bounded(job.materialize)
    finally:
        context.wait_for_min_actors_s = waited
    embedder = out.stats()[out.stats().index("MapBatches(Embedder)") :]
    assert re.search(r"Tasks per node: .*; 2 nodes used", embedder), embedder
    table = pa.concat_tables(ray.get(out.to_arrow_refs(), timeout=60))
    ids = table.column("id").to_pylist()
    assert sorted(ids) == list(range(ROWS))
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)[np.argsort(ids)]
    expected = SentenceTransformer(str(tiny_bert_path), device="cpu").encode(TEXTS)
    assert np.abs(vectors - expected).max() <= 1e-5
