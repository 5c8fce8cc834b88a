"""A random-init model built straight onto its devices and split over them by decoder layer: how the 80B geometry
is run across GPUs without weights (bench/bench_80b_geometry.py; the two-GPU issue).

    model, device_map = random_model_on_devices(config, ["cuda:0", "cuda:1"], torch.bfloat16)

1. The model is created on the meta device (no memory anywhere), then each part of `device_map` is materialised
   on its own device (`to_empty`) and filled there by the model class's own `_init_weights`: no host copy of the
   weights ever exists (160 GB for the 80B in bf16).
2. `device_map` gives the embedding and the first layers to the first device and the last layers, the final norm
   and the LM head to the last; layers are split evenly, in order (what `device_map="auto"` does for a model
   whose layers are alike).
3. A forward pre-hook on every placed module moves its tensor inputs to its device (what accelerate's
   dispatch does), so hidden states cross a device boundary once per boundary, not once per layer.
`_init_weights` also recomputes the rotary buffers (not parameters, so in no checkpoint) on their device.
"""

from __future__ import annotations

import torch


def layer_device_map(num_layers: int, devices: list[str]) -> dict[str, str]:
    """{module name: device}: embedding + rotary on the first device, layers split evenly in order, final norm and
    LM head on the last device."""
    if not devices:
        raise ValueError("give at least one device")
    per_device = -(-num_layers // len(devices))
    device_map = {"model.embed_tokens": devices[0], "model.rotary_emb": devices[0]}
    device_map.update({f"model.layers.{i}": devices[i // per_device] for i in range(num_layers)})
    device_map.update({"model.norm": devices[-1], "lm_head": devices[-1]})
    return device_map


def _to_device(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def dispatch(model: torch.nn.Module, device_map: dict[str, str]) -> list:
    """Hook every module of `device_map` to receive its inputs on its own device; returns the hook handles."""
    handles = []
    for name, device in device_map.items():
        target = torch.device(device)

        def move(module, args, kwargs, target=target):
            return _to_device(args, target), _to_device(kwargs, target)

        handles.append(model.get_submodule(name).register_forward_pre_hook(move, with_kwargs=True))
    return handles


@torch.no_grad()
def random_model_on_devices(config, devices: list[str], dtype: torch.dtype = torch.bfloat16):
    """(model, device_map): a random-init causal LM of `config`, each part created and initialised on its device
    (see the module docstring), in eval mode, its forward dispatched over the devices."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    device_map = layer_device_map(config.num_hidden_layers, devices)
    placed = set(device_map)
    unplaced = [n for n, _ in model.named_children() if n not in placed and n != "model"]
    unplaced += [f"model.{n}" for n, _ in model.model.named_children() if f"model.{n}" not in placed
                 and n != "layers"]
    if unplaced:
        raise ValueError(f"{type(model).__name__} has parts the layer map does not place: {unplaced}")
    for name, device in device_map.items():
        part = model.get_submodule(name)
        part.to_empty(device=device)
        for module in part.modules():
            model._init_weights(module)  # the class's own initialisation, on the part's device
    left = [n for n, p in model.named_parameters() if p.is_meta] + [n for n, b in model.named_buffers() if b.is_meta]
    if left:
        raise RuntimeError(f"left on the meta device: {left[:5]}")
    dispatch(model, device_map)
    return model.eval(), device_map
