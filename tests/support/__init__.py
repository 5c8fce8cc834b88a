"""Test helpers, not shipped in the wheel: seeded tiny models, a byte tokenizer and checkpoint writing (toy.py),
what a capture could leave on a model (model_state.py), a model split over devices (placement.py).
Tests import them as `support.*` (tests/ is on sys.path under pytest); bench/ scripts put tests/ on sys.path."""
