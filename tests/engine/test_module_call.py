"""encode runs the model through nn.Module.__call__, as sentence-transformers 6.2 does: forward hooks and
pre-hooks on the model see every pass (with the encode keywords the modules take), and model.compile() applies."""

import numpy as np
import pytest
import torch


def test_forward_hooks_on_the_model_see_every_pass(minilm, reference_minilm):
    texts = [f"sentence number {n} is about {topic}" for n, topic in enumerate(["cats", "tea", "rain"] * 10)]
    seen = {"pre": 0, "post": 0}
    for model in (minilm, reference_minilm):
        pre = model.register_forward_pre_hook(lambda module, args: seen.__setitem__("pre", seen["pre"] + 1))
        post = model.register_forward_hook(lambda module, args, output: seen.__setitem__("post", seen["post"] + 1))
        try:
            model.encode(texts, batch_size=8)
        finally:
            pre.remove()
            post.remove()
        assert seen == {"pre": 4, "post": 4}, type(model).__module__  # 30 texts in passes of 8
        seen.update(pre=0, post=0)


def test_a_forward_hook_can_change_what_encode_returns(minilm):
    def zero(module, args, output):
        output["sentence_embedding"] = torch.zeros_like(output["sentence_embedding"])
        return output

    handle = minilm.register_forward_hook(zero)
    try:
        assert not minilm.encode(["a hooked pass"]).any()
    finally:
        handle.remove()
    assert minilm.encode(["a hooked pass"]).any()


def test_encode_keywords_reach_the_model_call(tiny_bert_path):
    from embedstack import SentenceTransformer
    from embedstack.modules import Module, Pooling, Transformer

    class Scale(Module):
        forward_kwargs = {"scale"}

        def forward(self, features, scale: float = 1.0, **kwargs):
            features["sentence_embedding"] = features["sentence_embedding"] * scale
            return features

    transformer = Transformer(str(tiny_bert_path))
    model = SentenceTransformer(modules=[transformer, Pooling(32), Scale()], device="cpu")
    calls = []
    model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs), with_kwargs=True)
    doubled = model.encode(["a text"], scale=2.0)
    assert calls == [{"scale": 2.0}]
    np.testing.assert_allclose(doubled, 2 * model.encode(["a text"]), rtol=1e-6)


@pytest.mark.slow
def test_encode_runs_the_compiled_model(minilm_path):
    from embedstack import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    texts = ["A man is eating food.", "A man is riding a horse.", "The weather is lovely today."]
    expected = model.encode(texts)
    graphs = []

    def recording_backend(graph_module, example_inputs):  # a torch.compile backend: records, then runs the graph
        graphs.append(graph_module)
        return graph_module.forward

    model.compile(backend=recording_backend, dynamic=True)
    np.testing.assert_allclose(model.encode(texts), expected, atol=1e-5)
    assert graphs, "encode did not run the compiled model"
