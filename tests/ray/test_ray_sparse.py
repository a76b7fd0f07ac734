"""The CLI's --ray job with a SparseEncoder: the actors load the kind the folder saves and write the shards of the
single-process job (``indices`` and ``values`` columns) with the weights of encode."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a Ray cluster of its own: about a minute

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from embedstack import SparseEncoder  # noqa: E402
from embedstack.cli import main  # noqa: E402
from helpers import bounded  # noqa: E402

TEXTS = [f"row {i}: {' '.join(['token'] * (i % 7))} on subject {i % 4}" for i in range(40)]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_the_ray_job_writes_the_sparse_shards_of_encode(cluster, mlm_path, tmp_path):
    model = SparseEncoder(str(mlm_path), device="cpu")
    model.save(str(tmp_path / "sparse"))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(TEXTS)))
    common = ["encode", "-i", str(corpus), "--id-column", "id", "-m", str(tmp_path / "sparse"), "--shard-rows", "20"]
    common += ["--max-active-dims", "8", "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "local")]) == 0
    ray_args = ["--ray", "--actors", "1", "--rows-per-batch", "10"]
    assert bounded(main, [*common, "-o", str(tmp_path / "ray"), *ray_args]) == 0
    names = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert sorted(path.name for path in (tmp_path / "ray").iterdir()) == names and len(names) == 3
    table = pa.concat_tables([pq.read_table(tmp_path / "ray" / name) for name in names if name.startswith("part-")])
    local = pa.concat_tables([pq.read_table(tmp_path / "local" / name) for name in names if name.startswith("part-")])
    assert table.schema == local.schema and table.schema.names == ["row", "id", "indices", "values"]
    assert table.column("id").to_pylist() == list(range(len(TEXTS)))
    expected = model.encode(TEXTS, max_active_dims=8).to_dense().numpy()  # (rows, vocab)
    on_ray = np.zeros_like(expected)
    for row, (indices, values) in enumerate(
        zip(table.column("indices").to_pylist(), table.column("values").to_pylist())
    ):
        on_ray[row, indices] = values
    np.testing.assert_allclose(on_ray, expected, atol=1e-5)
