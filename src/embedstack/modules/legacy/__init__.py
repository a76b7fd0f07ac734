"""Modules that folders written by older sentence-transformers releases name: word embeddings, BoW, CNN, LSTM, ..."""
