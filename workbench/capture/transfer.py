"""Moving what the hooks recorded off the device: once per forward, never once per layer."""

from __future__ import annotations

import torch


def layers_and_calls(recorded: dict[int, list], what: str) -> tuple[list[int], list[list]]:
    """A recorder's {layer: [what each forward call recorded]} -> (sorted layers, their call lists in that order),
    after checking every layer saw the same number of calls (a layer skipped by a forward would misalign rows)."""
    layers = sorted(recorded)
    calls = {len(recorded[layer]) for layer in layers}
    if len(calls) != 1:
        raise RuntimeError(f"{what} layers saw different numbers of forward calls: {calls}")
    return layers, [recorded[layer] for layer in layers]


def stack_layers(per_layer: list[list[torch.Tensor]], dim: int = 0) -> torch.Tensor:
    """[[call tensors of layer 0], [of layer 1], ...] -> [L, ...]: concatenate each layer's calls along
    `dim`, then stack the layers on the first layer's device (layers may sit on several GPUs)."""
    tensors = [torch.cat(calls, dim=dim) if len(calls) > 1 else calls[0] for calls in per_layer]
    device = tensors[0].device
    return torch.stack([t.to(device) for t in tensors])


def to_host(fields: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy tensors to the CPU. On CUDA: all of a device's fields are packed into one byte buffer on the device,
    copied asynchronously into one pinned buffer, and the host fields are views of it, after one synchronisation.
    (A pageable copy per field blocks on each: measured at 1.086x vs 1.023x of the plain forward for routing
    capture, bench/RESULTS.md; a pinned buffer and a copy per field cost an allocation and a launch each.)
    Fields already on the CPU are returned as they are."""
    host = {name: t for name, t in fields.items() if t.device.type == "cpu"}
    by_device: dict[torch.device, list[str]] = {}
    for name, t in fields.items():
        if t.device.type != "cpu":
            by_device.setdefault(t.device, []).append(name)
    for names in by_device.values():
        host.update(_packed_copy({name: fields[name] for name in names}))
    if by_device:
        torch.cuda.synchronize()
    return {name: host[name] for name in fields}


ALIGN = 16  # bytes: every field starts at a multiple of any element size in the packed buffer


def _packed_copy(fields: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One device's fields -> CPU views of one buffer (pinned for CUDA), filled by one non-blocking copy (wait for
    the device before use). CPU fields work too (a plain buffer): the tests check the layout that way."""
    pieces, layout, offset = [], {}, 0
    for name, t in fields.items():
        data = t.detach().contiguous().reshape(-1).view(torch.uint8)
        pad = -data.numel() % ALIGN
        pieces += [data, data.new_zeros(pad)] if pad else [data]
        layout[name] = (offset, t.dtype, t.shape)
        offset += data.numel() + pad
    packed = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
    buffer = torch.empty(packed.numel(), dtype=torch.uint8, pin_memory=packed.device.type == "cuda")
    buffer.copy_(packed, non_blocking=True)
    return {name: buffer[start:start + shape.numel() * dtype.itemsize].view(dtype).reshape(shape)
            for name, (start, dtype, shape) in layout.items()}
