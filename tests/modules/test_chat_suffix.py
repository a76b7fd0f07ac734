"""Tables for embedstack.modules.transformer.chat_suffix: the truncation limit a call implies, the chat template's
closing tokens found by rendering a conversation's skeleton twice, and writing them back over the end of truncated rows.

The tokenizer is built in code: a word-level vocabulary split on whitespace, so every token below is one word and
rows can be written as lists of tokens."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from embedstack.modules.transformer import chat_suffix
from embedstack.modules.transformer.chat_suffix import (
    _skeleton,
    _template_suffix,
    _text_only,
    restore_suffix,
    truncation_limit,
)

VOCABULARY = "<pad> <unk> <user> <assistant> <system> [END] <gen> <image> 0 1 2 3 4 a b c d e be brief".split()

CONTENT = (
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image> {% else %}{{ p['text'] }} {% endif %}{% endfor %}{% endif %}"
)
TEMPLATES = {
    # every message ends with [END]: the closing token is [END]
    "closing": "{% for m in messages %}<{{ m['role'] }}> " + CONTENT + " [END] {% endfor %}",
    # ... then an assistant prefix: the closing tokens are [END] <gen>
    "generation": "{% for m in messages %}<{{ m['role'] }}> " + CONTENT + " [END] {% endfor %}<gen>",
    # content is the last thing rendered: no closing tokens
    "open": "{% for m in messages %}<{{ m['role'] }}> " + CONTENT + " {% endfor %}",
    # content is never rendered: both fillers give the same ids, so nothing is known to be template
    "contentless": "{% for m in messages %}<{{ m['role'] }}> {% endfor %}[END]",
    "raises": "{{ raise_exception('this template renders nothing') }}",
}


@pytest.fixture(scope="module")
def tokenizer():
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(VOCABULARY)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")


def renderer(tokenizer, template: str, calls: list | None = None):
    """``render`` as the Transformer module passes it: one conversation -> its ids, no padding or truncation."""

    def render(conversation: list[dict]) -> list[int]:
        if calls is not None:
            calls.append(conversation)
        return tokenizer.apply_chat_template(
            conversation, chat_template=TEMPLATES[template], tokenize=True, return_dict=False
        )

    return render


def user(content) -> dict:
    return {"role": "user", "content": content}


def assistant(content) -> dict:
    return {"role": "assistant", "content": content}


def system(content) -> dict:
    return {"role": "system", "content": content}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


IMAGE_PART = {"type": "image", "image": "cat.png"}

# ---------------------------------------------------------------------------------------------------------------
# truncation_limit(modality_kwargs, common, chat_kwargs, default_max): chat kwargs beat the text section, which
# beats the common kwargs; truncation is on when asked for, or when only a max_length is given.
LIMIT_ROWS = [
    ("nothing asked", {}, {}, {}, 256, None),
    ("truncation on, default length", {"truncation": True}, {}, {}, 256, 256),
    ("truncation strategy name", {"truncation": "longest_first"}, {}, {}, 128, 128),
    ("truncation on, no default", {"truncation": True}, {}, {}, None, None),
    ("max_length alone turns it on", {"max_length": 16}, {}, {}, 256, 16),
    ("truncation and max_length", {"truncation": True, "max_length": 16}, {}, {}, 256, 16),
    ("truncation off", {"truncation": False, "max_length": 16}, {}, {}, 256, None),
    ("do_not_truncate", {"truncation": "do_not_truncate", "max_length": 16}, {}, {}, 256, None),
    ("from the common kwargs", {}, {"truncation": True, "max_length": 8}, {}, 256, 8),
    ("common max_length alone", {}, {"max_length": 8}, {}, 256, 8),
    ("text section beats common", {"max_length": 16}, {"max_length": 8}, {}, 256, 16),
    ("text off beats common on", {"truncation": False}, {"truncation": True, "max_length": 8}, {}, 256, None),
    ("chat max_length beats text", {"max_length": 16}, {}, {"max_length": 4}, 256, 4),
    ("chat truncation off beats text on", {"truncation": True}, {}, {"truncation": False}, 256, None),
    ("chat truncation on, text length", {"max_length": 16}, {}, {"truncation": True}, 256, 16),
    ("chat max_length alone", {}, {}, {"max_length": 12}, 256, 12),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "common", "chat", "default_max", "expected"),
    [row[1:] for row in LIMIT_ROWS],
    ids=[row[0] for row in LIMIT_ROWS],
)
def test_truncation_limit(text, common, chat, default_max, expected):
    modality_kwargs = {"text": text, "image": {}, "audio": {}, "video": {}}
    assert truncation_limit(modality_kwargs, common, chat, default_max) == expected


# ---------------------------------------------------------------------------------------------------------------
# _skeleton(conversation, filler) and _text_only(conversation)
SKELETON_ROWS = [
    ("user text", [user("a b c")], [user("F")]),
    ("system kept whole", [system("be brief"), user("a")], [system("be brief"), user("F")]),
    ("every turn", [user("a"), assistant("b c")], [user("F"), assistant("F")]),
    ("structured content", [user([text_part("a"), text_part("b")])], [user([text_part("F")])]),
    ("other keys kept", [{**user("a"), "name": "x"}], [{**user("F"), "name": "x"}]),
    ("non-dict entry kept", ["stray", user("a")], ["stray", user("F")]),
    ("empty", [], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("conversation", "expected"), [r[1:] for r in SKELETON_ROWS], ids=[r[0] for r in SKELETON_ROWS]
)
def test_skeleton(conversation, expected):
    assert _skeleton(conversation, "F") == expected


TEXT_ONLY_ROWS = [
    ("string content", [user("a")], True),
    ("text parts", [user([text_part("a"), text_part("b")])], True),
    ("part without type is text", [user([{"text": "a"}])], True),
    ("image part", [user([IMAGE_PART, text_part("a")])], False),
    ("audio part in a later turn", [user("a"), assistant([{"type": "audio", "audio": "x.wav"}])], False),
    ("part that is not a dict", [user(["a"])], False),
    ("content None", [user(None)], False),
    ("no content", [{"role": "user"}], False),
    ("message not a dict", ["a"], False),
    ("empty conversation", [], True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("conversation", "expected"), [r[1:] for r in TEXT_ONLY_ROWS], ids=[r[0] for r in TEXT_ONLY_ROWS]
)
def test_text_only(conversation, expected):
    assert _text_only(conversation) is expected


# ---------------------------------------------------------------------------------------------------------------
# _template_suffix: the longest common tail of the two filler renderings, as tokens
SUFFIX_ROWS = [
    ("closing token", "closing", [user("a b c")], ["[END]"]),
    ("closing and generation prompt", "generation", [user("a b c")], ["[END]", "<gen>"]),
    ("multi-turn: the last turn's close", "closing", [user("a"), assistant("b c")], ["[END]"]),
    ("system prompt kept", "generation", [system("be brief"), user("a")], ["[END]", "<gen>"]),
    ("structured text parts", "closing", [user([text_part("a b"), text_part("c")])], ["[END]"]),
    ("template with no closing tokens", "open", [user("a b c")], []),
    ("template ignoring content", "contentless", [user("a b c")], []),
    ("system only: nothing varies", "closing", [system("be brief")], []),
    ("template that raises", "raises", [user("a")], []),
    ("image part: media tokens stay", "closing", [user([IMAGE_PART, text_part("a")])], []),
    ("empty conversation", "closing", [], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "conversation", "expected"), [r[1:] for r in SUFFIX_ROWS], ids=[r[0] for r in SUFFIX_ROWS]
)
def test_template_suffix(tokenizer, template, conversation, expected):
    cache: dict[str, list[int]] = {}
    suffix = _template_suffix(conversation, renderer(tokenizer, template), cache)
    assert tokenizer.convert_ids_to_tokens(suffix) == expected
    if conversation and _text_only(conversation):
        assert list(cache.values()) == [suffix]  # failures are cached too, so a bad template renders once


# ---------------------------------------------------------------------------------------------------------------
# restore_suffix on features written as token rows ("<pad>" is padding: the attention mask is 0 there)
RESTORE_ROWS = [
    (
        "truncated row gets its closing token",
        "closing", [[user("a b c d e")]], 4,
        [["<user>", "a", "b", "c"]],
        [["<user>", "a", "b", "[END]"]],
    ),
    (
        "short row untouched, right padding",
        "closing", [[user("a")], [user("a b c d e")]], 4,
        [["<user>", "a", "[END]", "<pad>"], ["<user>", "a", "b", "c"]],
        [["<user>", "a", "[END]", "<pad>"], ["<user>", "a", "b", "[END]"]],
    ),
    (
        "short row untouched, left padding",
        "closing", [[user("a")], [user("a b c d e")]], 4,
        [["<pad>", "<user>", "a", "[END]"], ["<user>", "a", "b", "c"]],
        [["<pad>", "<user>", "a", "[END]"], ["<user>", "a", "b", "[END]"]],
    ),
    (
        "two closing tokens",
        "generation", [[user("a b c d e")]], 5,
        [["<user>", "a", "b", "c", "d"]],
        [["<user>", "a", "b", "[END]", "<gen>"]],
    ),
    (
        "suffix longer than the row: its last tokens",
        "generation", [[user("a b c d e")]], 1,
        [["<user>"]],
        [["<gen>"]],
    ),
    (
        "multi-turn with a system prompt",
        "closing", [[system("be brief"), user("a b"), assistant("c d e")]], 6,
        [["<system>", "be", "brief", "[END]", "<user>", "a"]],
        [["<system>", "be", "brief", "[END]", "<user>", "[END]"]],
    ),
    (
        "batch narrower than max_length: nothing truncated",
        "closing", [[user("a")], [user("a b")]], 8,
        [["<user>", "a", "[END]", "<pad>"], ["<user>", "a", "b", "[END]"]],
        [["<user>", "a", "[END]", "<pad>"], ["<user>", "a", "b", "[END]"]],
    ),
    (
        "left-padded row in a wider batch: written at the right edge",
        "closing", [[user("a b c d e")]], 4,
        [["<pad>", "<pad>", "<user>", "a", "b", "c"]],
        [["<pad>", "<pad>", "<user>", "a", "b", "[END]"]],
    ),
    (
        "right-padded row in a wider batch: written after its last real token",
        "closing", [[user("a b c d e")]], 4,
        [["<user>", "a", "b", "c", "<pad>", "<pad>"]],
        [["<user>", "a", "b", "[END]", "<pad>", "<pad>"]],
    ),
    (
        "template without closing tokens",
        "open", [[user("a b c d e")]], 4,
        [["<user>", "a", "b", "c"]],
        [["<user>", "a", "b", "c"]],
    ),
    (
        "image conversation left as cut",
        "closing", [[user([IMAGE_PART, text_part("a b c")])]], 3,
        [["<user>", "<image>", "a"]],
        [["<user>", "<image>", "a"]],
    ),
    (
        "fewer conversations than rows: the rest untouched",
        "closing", [[user("a b c d e")]], 3,
        [["<user>", "a", "b"], ["<user>", "c", "d"]],
        [["<user>", "a", "[END]"], ["<user>", "c", "d"]],
    ),
    (
        "more conversations than rows: extra ones ignored",
        "closing", [[user("a b c d e")], [user("a b c d e")]], 3,
        [["<user>", "a", "b"]],
        [["<user>", "a", "[END]"]],
    ),
]  # fmt: skip


def features_of(tokenizer, rows: list[list[str]]) -> dict[str, torch.Tensor]:
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(row) for row in rows], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": (ids != tokenizer.pad_token_id).long()}


@pytest.mark.parametrize(
    ("template", "conversations", "max_length", "rows", "expected"),
    [r[1:] for r in RESTORE_ROWS],
    ids=[r[0] for r in RESTORE_ROWS],
)
def test_restore_suffix(tokenizer, template, conversations, max_length, rows, expected):
    features = features_of(tokenizer, rows)
    mask = features["attention_mask"].clone()
    restore_suffix(features, conversations, max_length, renderer(tokenizer, template), {})
    assert [tokenizer.convert_ids_to_tokens(row) for row in features["input_ids"].tolist()] == expected
    assert features["input_ids"].dtype == torch.long
    assert torch.equal(features["attention_mask"], mask)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_restore_suffix_on_tokenizer_output(tokenizer, padding_side):
    """Truncated by the tokenizer itself, as the chat-template path does."""
    conversations = [[user("a")], [user("a b c d e")], [system("be brief"), user("b c d e a b")]]
    template = TEMPLATES["generation"]
    texts = [tokenizer.apply_chat_template(c, chat_template=template, tokenize=False) for c in conversations]
    tokenizer.padding_side = padding_side
    try:
        features = dict(tokenizer(texts, padding=True, truncation=True, max_length=6, return_tensors="pt"))
    finally:
        tokenizer.padding_side = "right"
    restore_suffix(features, conversations, 6, renderer(tokenizer, "generation"), {})
    rows = [[t for t in tokenizer.convert_ids_to_tokens(row) if t != "<pad>"] for row in features["input_ids"].tolist()]
    assert rows == [
        ["<user>", "a", "[END]", "<gen>"],
        ["<user>", "a", "b", "c", "[END]", "<gen>"],
        ["<system>", "be", "brief", "[END]", "[END]", "<gen>"],
    ]


@pytest.mark.parametrize(
    "features",
    [
        {"input_ids": [[2, 9, 10, 11]], "attention_mask": [[1, 1, 1, 1]]},  # lists, not tensors
        {"input_ids": torch.tensor([[2, 9, 10, 11]])},  # no attention mask
        {"input_ids": torch.tensor([2, 9, 10, 11]), "attention_mask": torch.tensor([1, 1, 1, 1])},  # one dimension
    ],
    ids=["lists", "no mask", "1-d"],
)
def test_restore_suffix_leaves_other_features_alone(tokenizer, features):
    before = {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in features.items()}
    calls: list = []
    restore_suffix(features, [[user("a b c d e")]], 4, renderer(tokenizer, "closing", calls), {})
    assert calls == []
    for key, value in before.items():
        assert torch.equal(features[key], value) if isinstance(value, torch.Tensor) else features[key] == value


def test_suffix_is_rendered_once_per_skeleton(tokenizer):
    calls: list = []
    cache: dict[str, list[int]] = {}
    render = renderer(tokenizer, "closing", calls)
    rows = [["<user>", "a", "b"], ["<user>", "c", "d"], ["<system>", "be", "brief"]]
    conversations = [[user("a b c")], [user("c d e")], [system("be brief"), user("a b")]]
    restore_suffix(features_of(tokenizer, rows), conversations, 3, render, cache)
    assert len(calls) == 4  # two fillers for each of the two skeletons
    assert [m["content"] for c in calls for m in c if m["role"] == "user"] == ["0", "1 2 3 4", "0", "1 2 3 4"]
    restore_suffix(features_of(tokenizer, rows), conversations, 3, render, cache)
    assert len(calls) == 4  # all cached


def test_suffix_cache_is_bounded(tokenizer, monkeypatch):
    monkeypatch.setattr(chat_suffix, "_CACHE_LIMIT", 3)
    cache: dict[str, list[int]] = {}
    render = renderer(tokenizer, "closing")
    conversations = [[system(word), user("a")] for word in ("a", "b", "c", "d", "e")]
    for conversation in conversations:
        _template_suffix(conversation, render, cache)
    assert len(cache) == 3
    assert list(cache) == [repr(_skeleton(c, "")) for c in conversations[2:]]  # the oldest go first
