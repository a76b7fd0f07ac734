"""Ray Data: embed_dataset equals encode with every id once, an actor that dies is replaced without losing or
doubling a row, the CLI's --ray job writes the shards of the single-process job and resumes to the same files,
and impossible resource requests fail at once. One local Ray cluster (2 CPUs) serves the whole module."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from embedstack import SentenceTransformer  # noqa: E402
from embedstack.cli import main  # noqa: E402
from embedstack.errors import ClusterResourcesError  # noqa: E402
from embedstack.ray import embed_dataset, plan_actors  # noqa: E402
from embedstack.ray.dataset import FAIL_ONCE_VARIABLE  # noqa: E402
from helpers import bounded  # noqa: E402

ROWS = 200
TEXTS = [f"row {i}: {' '.join(['token'] * (i % 23))} on subject {i % 9}" for i in range(ROWS)]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def expected(tiny_bert_path):
    return SentenceTransformer(str(tiny_bert_path), device="cpu").encode(TEXTS)


def collect(ds):
    return bounded(lambda: pa.concat_tables(ray.get(ds.to_arrow_refs())))


def assert_same(table, expected):
    ids = table.column("id").to_pylist()
    assert sorted(ids) == list(range(ROWS))  # every id exactly once
    order = np.argsort(ids)
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)[order]
    assert np.abs(vectors - expected).max() <= 1e-5


def test_embed_dataset_equals_encode_with_every_id_once(cluster, tiny_bert_path, expected):
    ds = ray.data.from_items([{"id": i, "text": text} for i, text in enumerate(TEXTS)], override_num_blocks=4)
    out = embed_dataset(ds, tiny_bert_path, actors=1, batch_size=50)
    table = collect(out)
    assert set(table.column_names) == {"id", "embedding"}
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    assert_same(table, expected)


def test_encode_options_reach_the_actors_unchanged_and_encode_batch_size_still_works(
    cluster, tiny_bert_path, monkeypatch
):
    from embedstack.ray import dataset

    built = []  # the actors' constructor arguments; nothing runs
    monkeypatch.setattr(dataset, "_map", lambda ds, actors, cpus, remote, constructor: built.append(constructor))
    ds = ray.data.from_items([{"text": "x"}])
    embed_dataset(ds, tiny_bert_path, actors=1, batch_size=50, encode_options={"batch_size": 8}, prompt="query: ")
    with pytest.warns(FutureWarning, match=r"encode_options=\{'batch_size'"):
        embed_dataset(ds, tiny_bert_path, actors=1, batch_size=50, encode_batch_size=8)  # the old spelling
    assert [c["encode_options"] for c in built] == [{"batch_size": 8, "prompt": "query: "}, {"batch_size": 8}]
    assert [c["batch_size"] for c in built] == [50, 50]  # Ray's rows per actor batch, apart from encode's


def test_actors_run_an_exported_int8_file(cluster, tiny_bert_path, tmp_path):
    int8_file = "model_qint8_avx512_vnni.onnx"
    folder = SentenceTransformer(str(tiny_bert_path), device="cpu").export_onnx(tmp_path / "m", quantize="int8")
    # One block, passed whole: the engine sees the rows encode sees (dynamic int8 depends on each pass's rows).
    ds = ray.data.from_items([{"id": i, "text": text} for i, text in enumerate(TEXTS)], override_num_blocks=1)
    out = embed_dataset(ds, folder, actors=1, batch_size=None, backend="onnx", model_kwargs={"file_name": int8_file})
    int8 = SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": int8_file})
    assert_same(collect(out), int8.encode(TEXTS))


def test_an_actor_that_dies_is_replaced_and_no_row_is_lost_or_doubled(cluster, tiny_bert_path, expected, tmp_path):
    marker = tmp_path / "died"
    ds = ray.data.from_items([{"id": i, "text": text} for i, text in enumerate(TEXTS)], override_num_blocks=4)
    remote = {"runtime_env": {"env_vars": {FAIL_ONCE_VARIABLE: str(marker)}}}
    out = embed_dataset(ds, tiny_bert_path, actors=1, batch_size=50, ray_remote_args=remote)
    table = collect(out)
    assert marker.exists()  # an actor did exit on its first batch
    assert_same(table, expected)


def test_the_cli_ray_job_writes_the_shards_and_resumes_to_the_same_files(cluster, tiny_bert_path, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for part in range(2):  # a folder of two Parquet files
        ids = list(range(part * 100, (part + 1) * 100))
        pq.write_table(pa.table({"id": ids, "text": [TEXTS[i] for i in ids]}), corpus / f"{part}.parquet")
    common = ["-i", str(corpus), "--id-column", "id", "--model", str(tiny_bert_path), "--shard-rows", "60"]
    common += ["--batch-size", "16"]  # encode's batch_size, which reaches the actors under that name
    assert main(["encode", *common, "-o", str(tmp_path / "local")]) == 0
    ray_args = ["--ray", "--actors", "2", "--rows-per-batch", "20"]
    assert bounded(main, ["encode", *common, "-o", str(tmp_path / "ray"), *ray_args]) == 0
    names = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert sorted(path.name for path in (tmp_path / "ray").iterdir()) == names and len(names) == 5
    for name in [name for name in names if name.startswith("part-")]:
        local, on_ray = pq.read_table(tmp_path / "local" / name), pq.read_table(tmp_path / "ray" / name)
        assert local.column("row").equals(on_ray.column("row")) and local.column("id").equals(on_ray.column("id"))
        difference = np.array(local.column("embedding").to_pylist()) - np.array(on_ray.column("embedding").to_pylist())
        assert np.abs(difference).max() <= 1e-5
    # Resume: shards 1 and 3 lost (and a half-written one left behind); the rerun writes the same bytes.
    whole = {name: (tmp_path / "ray" / name).read_bytes() for name in names}
    (tmp_path / "ray" / "part-00001.parquet").unlink()
    (tmp_path / "ray" / "part-00003.parquet").rename(tmp_path / "ray" / ".part-00003.parquet.partial")
    ray_args[2] = "1"  # one actor this time: each batch is still one piece, the vectors the same
    assert bounded(main, ["encode", *common, "-o", str(tmp_path / "ray"), *ray_args]) == 0
    assert {path.name: path.read_bytes() for path in (tmp_path / "ray").iterdir()} == whole


def test_asking_for_every_cpu_fails_at_once_with_what_to_change(cluster, tiny_bert_path):
    ds = ray.data.from_items([{"text": "x"}])
    with pytest.raises(ClusterResourcesError, match="ray issue #44687"):
        embed_dataset(ds, tiny_bert_path, actors=2)  # 2 x 1 CPU on 2 CPUs, nothing left for reading
    with pytest.raises(ClusterResourcesError, match="need 1 GPUs, but the cluster has 0"):
        embed_dataset(ds, tiny_bert_path, actors=1, num_gpus=1)


@pytest.mark.parametrize(
    "cluster_resources, kwargs, planned",
    [
        ({"CPU": 8.0}, {}, (7, 1.0)),
        ({"CPU": 2.0}, {}, (1, 1.0)),
        ({"CPU": 2.0}, {"reserve_cpus": 0.0}, (2, 1.0)),
        ({"CPU": 16.0}, {"num_cpus": 4.0}, (3, 4.0)),
        ({"CPU": 16.0, "GPU": 4.0}, {"num_gpus": 1.0}, (4, 1.0)),
        ({"CPU": 16.0, "GPU": 1.0}, {"num_gpus": 0.5}, (2, 1.0)),
    ],
)
def test_default_actor_plans(cluster_resources, kwargs, planned):
    options = {"actors": None, "num_cpus": None, "num_gpus": 0.0, "reserve_cpus": 1.0, **kwargs}
    assert plan_actors(cluster_resources, **options) == planned


def test_impossible_plans_name_the_numbers():
    with pytest.raises(ClusterResourcesError, match="3 actors x 1 CPU take 3 of the cluster's 2 CPUs"):
        plan_actors({"CPU": 2.0}, actors=3, num_cpus=None, num_gpus=0.0, reserve_cpus=0.0)
    with pytest.raises(ValueError, match="actors must be a positive integer"):
        plan_actors({"CPU": 2.0}, actors=0, num_cpus=None, num_gpus=0.0, reserve_cpus=0.0)


def test_ray_extra_missing_says_what_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    corpus = tmp_path / "in.txt"
    corpus.write_text("a\n")
    assert main(["encode", "-i", str(corpus), "-o", str(tmp_path / "out"), "--ray"]) == 2
    assert "pip install 'embedstack[ray]'" in capsys.readouterr().err
