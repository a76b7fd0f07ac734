"""Evaluation of embedding models on public benchmarks shipped as Python packages."""
