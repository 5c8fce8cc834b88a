"""workbench: observe hybrid linear-attention and MoE language models without changing them (Qwen3-Next, Qwen3.5,
Kimi-Linear, plain MoE transformers: workbench.adapters lists the families).

Data flows one way: adapters (what a model family looks like) -> capture (hooks) -> ops (math)
-> trace (Parquet) -> analysis (tables in, tables out) -> app / probes / cli.
"""

__version__ = "0.1.0"
