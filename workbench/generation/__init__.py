"""Tracing a generation: every decoded token's captures, through the model's own cache (decode.py, run.py), and
self-speculative decoding with the checkpoint's MTP head (speculative.py)."""

from .decode import Generation, generate
from .run import generate_prompts, generate_traced, with_phase
from .settings import GenerationSettings

__all__ = ["Generation", "GenerationSettings", "generate", "generate_prompts", "generate_traced", "with_phase"]
