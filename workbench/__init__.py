"""workbench: observe hybrid linear-attention MoE language models (Qwen3-Next family) without changing them.

Data flows one way: adapters (what a model family looks like) -> capture (hooks) -> ops (math)
-> trace (Parquet) -> analysis (tables in, tables out) -> app / probes / cli.
"""

__version__ = "0.1.0"
