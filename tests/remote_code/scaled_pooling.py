# A custom module with weights, a relative import and a forward keyword: used as remote code in the tests.

import torch

from embedstack.modules import Module

from .scaling import SCALE


class ScaledMeanPooling(Module):
    config_keys: list[str] = ["dimension", "scale"]

    def __init__(self, dimension: int, scale: float = SCALE, **kwargs) -> None:
        super().__init__()
        self.dimension = dimension
        self.scale = scale
        self.bias = torch.nn.Parameter(torch.linspace(-1, 1, dimension))

    def forward(self, features: dict[str, torch.Tensor], task: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        mask = features["attention_mask"].unsqueeze(-1).to(features["token_embeddings"].dtype)  # (batch, seq, 1)
        mean = (features["token_embeddings"] * mask).sum(1) / mask.sum(1).clamp(min=1)  # (batch, dim)
        scale = -self.scale if task == "negate" else self.scale
        features["sentence_embedding"] = mean * scale + self.bias
        return features

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path, *args, safe_serialization=True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path, subfolder="", **kwargs):
        module = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
        return cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=module)
