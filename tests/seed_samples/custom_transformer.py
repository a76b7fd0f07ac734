# custom_transformer.py: the seed's keyword-passthrough example, with the import lines changed and its two
# "# Do something" branches filled in (task="default" doubles the token embeddings).


import torch

from embedstack.modules import Transformer


class CustomTransformer(Transformer):
    def forward(self, features: dict[str, torch.Tensor], task: str | None = None, **kwargs) -> dict[str, torch.Tensor]:  # noqa: E501, UP045
        features = super().forward(features, **kwargs)
        if task == "default":
            features["token_embeddings"] = features["token_embeddings"] * 2
        else:
            pass
        return features
