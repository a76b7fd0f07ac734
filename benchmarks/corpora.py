"""The benchmark corpora: see ``embedstack.evaluation.corpora`` (the tests check the engine's padding on them)."""

from embedstack.evaluation.corpora import CORPORA, mixed, sts_test, wiki

__all__ = ["CORPORA", "mixed", "sts_test", "wiki"]
