# An old-style custom Transformer module (as jina-embeddings-v3 and other models ship): a plain nn.Module whose
# load() takes one path and whose __init__ takes model_args / tokenizer_args / config_args. Loaders build it
# through __init__ from sentence_bert_config.json. It halves the token embeddings, so that it is recognisable.

import json
import os

from torch import nn
from transformers import AutoModel, AutoTokenizer


class OldTransformer(nn.Module):
    def __init__(
        self,
        model_name_or_path,
        max_seq_length=None,
        model_args=None,
        tokenizer_args=None,
        config_args=None,
        cache_dir=None,
        do_lower_case=False,
        tokenizer_name_or_path=None,
        backend="torch",
    ):
        super().__init__()
        model_args = {key: value for key, value in (model_args or {}).items() if key != "subfolder"}
        tokenizer_args = {key: value for key, value in (tokenizer_args or {}).items() if key != "subfolder"}
        self.max_seq_length = max_seq_length
        self.auto_model = AutoModel.from_pretrained(model_name_or_path, **model_args)
        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **tokenizer_args)

    def forward(self, features, **kwargs):
        output = self.auto_model(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
        features["token_embeddings"] = output.last_hidden_state * 0.5
        return features

    def tokenize(self, texts, **kwargs):
        encoded = self.tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self.max_seq_length, return_tensors="pt"
        )
        return dict(encoded)

    def get_word_embedding_dimension(self):
        return self.auto_model.config.hidden_size

    def save(self, output_path):
        self.auto_model.save_pretrained(output_path)
        self.tokenizer.save_pretrained(output_path)
        with open(os.path.join(output_path, "sentence_bert_config.json"), "w") as handle:
            json.dump({"max_seq_length": self.max_seq_length, "do_lower_case": False}, handle)

    @staticmethod
    def load(input_path):
        raise AssertionError("sentence-transformers builds this module through __init__, not load()")
