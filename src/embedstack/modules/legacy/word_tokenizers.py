"""Word-level tokenizers of the legacy WordEmbeddings and BoW modules: text -> vocabulary ids.

Each saves itself as one JSON file in the module folder and is named in ``wordembedding_config.json`` by the
dotted class path sentence-transformers writes (``TOKENIZER_CLASS_NAMES``).
"""

from __future__ import annotations

import json
import string
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from embedstack.errors import MissingExtraError
from embedstack.fileio import read_json
from embedstack.modules.legacy.english_stop_words import ENGLISH_STOP_WORDS

_ST_TOKENIZER = "sentence_transformers.sentence_transformer.modules.tokenizer"


class WordTokenizer(ABC):
    """Maps a text to a list of vocabulary ids; saved as a JSON file by ``save`` and read back by ``load``."""

    @abstractmethod
    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary; a word's id is its position."""

    @abstractmethod
    def get_vocab(self) -> list[str]:
        """The vocabulary, in id order."""

    @abstractmethod
    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """The vocabulary ids of the words of ``text`` (unknown words are dropped)."""

    @abstractmethod
    def save(self, output_path: str) -> None:
        """Write the tokenizer into the folder ``output_path``."""

    @staticmethod
    @abstractmethod
    def load(input_path: str) -> WordTokenizer:
        """Read a tokenizer saved by :meth:`save` from the folder ``input_path``."""


class WhitespaceTokenizer(WordTokenizer):
    """Splits on whitespace; a token is looked up as is, without surrounding punctuation, then lower-cased."""

    config_file_name = "whitespacetokenizer_config.json"

    def __init__(
        self, vocab: Iterable[str] = (), stop_words: Iterable[str] = ENGLISH_STOP_WORDS, do_lower_case: bool = False
    ) -> None:
        self.stop_words = set(stop_words)
        self.do_lower_case = do_lower_case
        self.set_vocab(vocab)

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary; a word's id is its position."""
        self.vocab = list(vocab)
        self.word2idx = {word: index for index, word in enumerate(self.vocab)}

    def get_vocab(self) -> list[str]:
        """The vocabulary, in id order."""
        return self.vocab

    def _lookup(self, candidates: Iterable[str]) -> int | None:
        """The id of the first candidate in the vocabulary; None when one is a stop word first or none matches."""
        for token in candidates:
            if token in self.stop_words:
                return None
            if token and token in self.word2idx:
                return self.word2idx[token]
        return None

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Split on whitespace and look each token up; stop words and unknown words are dropped."""
        if self.do_lower_case:
            text = text.lower()
        ids = []
        for token in text.split():
            stripped = token.strip(string.punctuation)
            found = self._lookup((token, stripped, stripped.lower()))
            if found is not None:
                ids.append(found)
        return ids

    def _config(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "stop_words": sorted(self.stop_words), "do_lower_case": self.do_lower_case}

    def save(self, output_path: str) -> None:
        """Write the vocabulary, stop words and casing to ``whitespacetokenizer_config.json``."""
        with open(Path(output_path) / self.config_file_name, "w", encoding="utf-8") as handle:
            json.dump(self._config(), handle)

    @classmethod
    def load(cls, input_path: str) -> WhitespaceTokenizer:
        """Read the tokenizer from its JSON file in ``input_path``."""
        config = read_json(Path(input_path) / cls.config_file_name)
        return cls(**config)


class PhraseTokenizer(WhitespaceTokenizer):
    """NLTK word tokenization that merges phrases in the vocabulary (``New_York``) into one token."""

    config_file_name = "phrasetokenizer_config.json"

    def __init__(
        self,
        vocab: Iterable[str] = (),
        stop_words: Iterable[str] = ENGLISH_STOP_WORDS,
        do_lower_case: bool = False,
        ngram_separator: str = "_",
        max_ngram_length: int = 5,
    ) -> None:
        self.ngram_separator = ngram_separator
        self.max_ngram_length = max_ngram_length
        super().__init__(vocab, stop_words, do_lower_case)

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary and note the phrases in it (words joined by ``ngram_separator``)."""
        super().set_vocab(vocab)
        sep = self.ngram_separator
        self.ngram_lookup = {
            word
            for word in self.vocab
            if sep and sep in word and sep + sep not in word and word.count(sep) + 1 <= self.max_ngram_length
        }
        self.ngram_lengths = {word.count(sep) + 1 for word in self.ngram_lookup}

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Tokenize with NLTK, merge known phrases (longest first), and look each token up."""
        try:
            from nltk import word_tokenize
        except ImportError:
            raise MissingExtraError("PhraseTokenizer needs NLTK. Run: pip install nltk") from None
        tokens = word_tokenize(text, preserve_line=True)
        for length in sorted(self.ngram_lengths, reverse=True):
            index = 0
            while index <= len(tokens) - length:
                ngram = self.ngram_separator.join(tokens[index : index + length])
                if ngram in self.ngram_lookup:
                    tokens[index : index + length] = [ngram]
                elif ngram.lower() in self.ngram_lookup:
                    tokens[index : index + length] = [ngram.lower()]
                index += 1
        ids = []
        for token in tokens:
            found = self._lookup((token, token.lower(), token.lower().strip(string.punctuation)))
            if found is not None:
                ids.append(found)
        return ids

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "ngram_separator": self.ngram_separator,
            "max_ngram_length": self.max_ngram_length,
        }


class TransformersTokenizerWrapper(WordTokenizer):
    """A Hugging Face tokenizer used as a word tokenizer (ids with special tokens)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Do nothing: the Hugging Face tokenizer keeps its own vocabulary."""
        pass

    def get_vocab(self) -> list[str]:
        """The Hugging Face tokenizer's vocabulary."""
        return list(self.tokenizer.get_vocab())

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """The Hugging Face tokenizer's ids for ``text``, special tokens included."""
        return self.tokenizer(text)["input_ids"]

    def save(self, output_path: str) -> None:
        """Save the Hugging Face tokenizer into ``output_path``."""
        self.tokenizer.save_pretrained(output_path)

    @staticmethod
    def load(input_path: str) -> TransformersTokenizerWrapper:
        """Load the Hugging Face tokenizer saved in ``input_path``."""
        from transformers import AutoTokenizer

        return TransformersTokenizerWrapper(AutoTokenizer.from_pretrained(input_path))


# The names sentence-transformers writes (and has written) for each tokenizer, by our class.
_SPELLINGS: dict[type[WordTokenizer], tuple[str, str]] = {
    WhitespaceTokenizer: ("whitespace", "WhitespaceTokenizer"),
    PhraseTokenizer: ("phrase", "PhraseTokenizer"),
    TransformersTokenizerWrapper: ("word", "WordTokenizer"),
}
TOKENIZER_CLASS_NAMES: dict[str, type[WordTokenizer]] = {}
for _cls, (_module, _legacy_module) in _SPELLINGS.items():
    for _name in (
        f"{_ST_TOKENIZER}.{_module}.{_cls.__name__}",
        f"{_ST_TOKENIZER}.{_cls.__name__}",
        f"sentence_transformers.models.tokenizer.{_legacy_module}.{_cls.__name__}",
        f"sentence_transformers.models.tokenizer.{_cls.__name__}",
        f"{__name__}.{_cls.__name__}",
        f"embedstack.modules.word_tokenizers.{_cls.__name__}",  # where embedstack 0.1 kept them
    ):
        TOKENIZER_CLASS_NAMES[_name] = _cls


def tokenizer_class_name(tokenizer: WordTokenizer) -> str:
    """The dotted name sentence-transformers 6.2 writes for ``tokenizer`` (ours), else the class's own path."""
    cls = type(tokenizer)
    if cls in _SPELLINGS:
        return f"{_ST_TOKENIZER}.{_SPELLINGS[cls][0]}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"
