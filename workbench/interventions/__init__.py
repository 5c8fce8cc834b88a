"""Interventions: explicit, labelled changes to a model's computation (unlike capture/, which only observes). Each is
a context manager that restores the model on exit and on error."""

from .expert_mask import ExpertMaskError, mask_experts
from .patching import PatchingError, Site, patched, patching_sweep

__all__ = ["ExpertMaskError", "PatchingError", "Site", "mask_experts", "patched", "patching_sweep"]
