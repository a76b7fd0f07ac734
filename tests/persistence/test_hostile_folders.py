"""A model folder is untrusted input: every damaged or hostile folder fails with our error, naming what is wrong,
and no code from it runs. The cases (and the table in the session note) live in hostile_cases.py."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.errors import EmbedstackError
from hostile_cases import CASES, MARKER

TEXTS = ["a damaged folder", "must fail clearly"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_folder(case, stack_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(stack_folder, folder, symlinks=True)
    case.mutate(folder)
    if case.error is None:
        loaded = SentenceTransformer(str(folder), device="cpu")
        expected = SentenceTransformer(str(stack_folder), device="cpu").encode(TEXTS)
        np.testing.assert_allclose(loaded.encode(TEXTS), expected, atol=1e-6)
    else:
        with pytest.raises(case.error, match=case.match) as info:
            SentenceTransformer(str(folder), device="cpu")
        assert isinstance(info.value, (EmbedstackError, ImportError)), type(info.value)
    assert not (tmp_path / MARKER).exists(), "code from the folder ran"
