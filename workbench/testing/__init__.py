"""Seeded tiny models, a byte tokenizer and checkpoint writing for tests and benchmarks (no downloads)."""
