# learnable_decay_pooling.py: the seed's DecayMeanPooling with the decay as a trainable parameter (saved as weights).

import math

import torch

from embedstack.modules import Module


class LearnableDecayPooling(Module):
    config_keys: list[str] = ["dimension"]

    def __init__(self, dimension: int, decay: float = 0.95, **kwargs) -> None:
        super().__init__()
        self.dimension = dimension
        self.decay_logit = torch.nn.Parameter(torch.tensor(math.log(decay / (1 - decay))))

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        token_embeddings = features["token_embeddings"]
        attention_mask = features["attention_mask"].unsqueeze(-1)
        sentence_embeddings = (token_embeddings * attention_mask).sum(1) / attention_mask.sum(1)
        positions = torch.arange(sentence_embeddings.size(1), device=sentence_embeddings.device)
        features["sentence_embedding"] = sentence_embeddings * torch.sigmoid(self.decay_logit) ** positions
        return features

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path, *args, safe_serialization=True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path, subfolder="", **kwargs):
        model = cls(**cls.load_config(model_name_or_path, subfolder=subfolder, **kwargs))
        return cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=model, **kwargs)
