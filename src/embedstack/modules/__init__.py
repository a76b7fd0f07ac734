"""Building blocks of a model: the module contract, the built-in modules and the legacy ones older folders use."""

from embedstack.modules.base import InputModule, Module
from embedstack.modules.bow import BoW
from embedstack.modules.clip_model import CLIPModel
from embedstack.modules.cnn import CNN
from embedstack.modules.dense import Dense
from embedstack.modules.dropout import Dropout
from embedstack.modules.layer_norm import LayerNorm
from embedstack.modules.lstm import LSTM
from embedstack.modules.normalize import Normalize
from embedstack.modules.pooling import Pooling
from embedstack.modules.router import Asym, Router
from embedstack.modules.static_embedding import StaticEmbedding
from embedstack.modules.transformer import Transformer
from embedstack.modules.weighted_layer_pooling import WeightedLayerPooling
from embedstack.modules.word_embeddings import WordEmbeddings
from embedstack.modules.word_tokenizers import PhraseTokenizer, WhitespaceTokenizer, WordTokenizer
from embedstack.modules.word_weights import WordWeights

# Every module class a modules.json entry can name (see registry.py and persistence/legacy.py).
BUILTIN_MODULE_NAMES: tuple[str, ...] = (
    "Transformer",
    "Pooling",
    "Dense",
    "Normalize",
    "Router",
    "StaticEmbedding",
    "WordEmbeddings",
    "WordWeights",
    "BoW",
    "CNN",
    "LSTM",
    "LayerNorm",
    "Dropout",
    "WeightedLayerPooling",
    "CLIPModel",
)

__all__ = [
    "Module",
    "InputModule",
    "Transformer",
    "Pooling",
    "Dense",
    "Normalize",
    "Router",
    "Asym",
    "StaticEmbedding",
    "WordEmbeddings",
    "WordWeights",
    "BoW",
    "CNN",
    "LSTM",
    "LayerNorm",
    "Dropout",
    "WeightedLayerPooling",
    "CLIPModel",
    "WordTokenizer",
    "WhitespaceTokenizer",
    "PhraseTokenizer",
    "BUILTIN_MODULE_NAMES",
]
