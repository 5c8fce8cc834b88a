"""Multi-token prediction: load a checkpoint's `mtp.*` head beside its trunk and measure draft acceptance."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .head import MTPHead, mtp_logits, mtp_rows
from .weights import NoMTPWeights, fuse_experts, mtp_tensor_names, num_mtp_layers, read_mtp_tensors, write_mtp_shard

__all__ = ["MTPHead", "NoMTPWeights", "load_mtp_head", "mtp_logits", "mtp_rows", "mtp_tensor_names", "write_mtp_shard"]


def load_mtp_head(model: nn.Module, folder: str | Path) -> MTPHead:
    """Build the MTP head for a loaded trunk and fill it from the checkpoint's `mtp.*` tensors (on the trunk's
    device and dtype, eval mode). Raises NoMTPWeights ("this checkpoint has no MTP weights") when there are none,
    and ValueError naming the missing or unexpected tensors when they do not fit the trunk's config."""
    tensors = fuse_experts(read_mtp_tensors(folder))
    head = MTPHead(model, num_layers=num_mtp_layers(tensors))
    try:
        result = head.load_state_dict(tensors, strict=False)
    except RuntimeError as error:  # a shape that does not match the trunk's config
        raise ValueError(f"the mtp.* tensors in {folder} do not fit this model: {str(error).splitlines()[-1]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"the mtp.* tensors in {folder} do not fit this model: missing {result.missing_keys[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    reference = next(model.parameters())
    return head.to(device=reference.device, dtype=reference.dtype).eval()
