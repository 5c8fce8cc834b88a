"""Read and write a checkpoint's `mtp.*` tensors in the release layout.

The Qwen3-Next release stores the MTP module under `mtp.` (`mtp.fc.weight`, `mtp.pre_fc_norm_embedding.weight`,
`mtp.pre_fc_norm_hidden.weight`, `mtp.layers.0.…`, `mtp.norm.weight`), experts one tensor per expert and
projection (`mtp.layers.0.mlp.experts.{e}.{gate,up,down}_proj.weight`), in a shard of its own that
`model.safetensors.index.json` lists. transformers stores a layer's experts fused
(`experts.gate_up_proj [E, 2I, H]` = per expert cat[gate [I, H], up [I, H]]; `experts.down_proj [E, H, I]`):
`fuse_experts` / `split_experts` convert between the two, as transformers' own conversion mapping does.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import torch

PREFIX = "mtp."
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_PER_EXPERT = re.compile(r"^(?P<stem>.*\.experts)\.(?P<e>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)\.weight$")
_SHARD = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")


class NoMTPWeights(ValueError):
    """The checkpoint holds no `mtp.*` tensors."""


def _weight_map(folder: Path) -> dict[str, str]:
    """{tensor name: shard file name} from the index, or from a single model.safetensors."""
    from safetensors import safe_open

    if (folder / INDEX).is_file():
        return json.loads((folder / INDEX).read_text())["weight_map"]
    if (folder / SINGLE).is_file():
        with safe_open(str(folder / SINGLE), framework="pt") as f:
            return {name: SINGLE for name in f.keys()}
    raise FileNotFoundError(f"{folder} has neither {INDEX} nor {SINGLE}")


def mtp_tensor_names(folder: str | Path) -> list[str]:
    """Names of the checkpoint's `mtp.*` tensors (empty when it has none)."""
    return sorted(name for name in _weight_map(Path(folder)) if name.startswith(PREFIX))


def read_mtp_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    """{name without `mtp.`: tensor} for every `mtp.*` tensor, opening only the shards that hold them."""
    from safetensors import safe_open

    folder = Path(folder)
    by_shard: dict[str, list[str]] = defaultdict(list)
    for name, shard in _weight_map(folder).items():
        if name.startswith(PREFIX):
            by_shard[shard].append(name)
    if not by_shard:
        raise NoMTPWeights(f"this checkpoint has no MTP weights (no mtp.* tensors in {folder})")
    tensors = {}
    for shard, names in sorted(by_shard.items()):
        with safe_open(str(folder / shard), framework="pt") as f:
            for name in names:
                tensors[name[len(PREFIX):]] = f.get_tensor(name)
    return tensors


def fuse_experts(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-expert `…experts.{e}.{gate,up,down}_proj.weight` -> fused `…experts.gate_up_proj` / `down_proj`.
    Names that are not per-expert pass through unchanged."""
    out, groups = {}, defaultdict(dict)
    for name, tensor in tensors.items():
        match = _PER_EXPERT.match(name)
        if match is None:
            out[name] = tensor
        else:
            groups[match["stem"]][(int(match["e"]), match["proj"])] = tensor
    for stem, parts in groups.items():
        experts = sorted({e for e, _ in parts})
        if experts != list(range(len(experts))) or len(parts) != 3 * len(experts):
            raise ValueError(f"{stem}: expert tensors are incomplete ({len(parts)} for experts {experts[:3]}…)")
        out[f"{stem}.gate_up_proj"] = torch.stack(
            [torch.cat([parts[(e, "gate_proj")], parts[(e, "up_proj")]], dim=0) for e in experts])  # [E, 2I, H]
        out[f"{stem}.down_proj"] = torch.stack([parts[(e, "down_proj")] for e in experts])  # [E, H, I]
    return out


def split_experts(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `fuse_experts`: fused expert tensors -> one tensor per expert and projection."""
    out = {}
    for name, tensor in tensors.items():
        if name.endswith(".experts.gate_up_proj"):
            stem = name[: -len(".gate_up_proj")]
            gate, up = tensor.chunk(2, dim=1)  # [E, I, H] each
            for e in range(tensor.shape[0]):
                out[f"{stem}.{e}.gate_proj.weight"] = gate[e].contiguous()
                out[f"{stem}.{e}.up_proj.weight"] = up[e].contiguous()
        elif name.endswith(".experts.down_proj"):
            stem = name[: -len(".down_proj")]
            for e in range(tensor.shape[0]):
                out[f"{stem}.{e}.down_proj.weight"] = tensor[e].contiguous()
        else:
            out[name] = tensor
    return out


def num_mtp_layers(names) -> int:
    """How many MTP decoder layers the tensor names (without `mtp.`) hold."""
    indices = {int(m.group(1)) for name in names if (m := re.match(r"^layers\.(\d+)\.", name))}
    if not indices:
        raise NoMTPWeights("the mtp.* tensors hold no decoder layer (mtp.layers.N.*)")
    return max(indices) + 1


def write_mtp_shard(folder: str | Path, state_dict: dict[str, torch.Tensor]) -> Path:
    """Add an MTP state dict (names without `mtp.`, experts fused or not) to a sharded checkpoint folder as
    its own last shard, in the release layout: shards renumbered `model-0000i-of-0000(N+1)`, index updated.
    A single-file checkpoint is first moved to `model-00001-of-00002.safetensors`. Returns the new shard."""
    from safetensors.torch import save_file

    folder = Path(folder)
    weight_map = _weight_map(folder)
    if any(name.startswith(PREFIX) for name in weight_map):
        raise ValueError(f"{folder} already holds mtp.* tensors")
    shards = sorted(set(weight_map.values()))
    count = len(shards) + 1
    renamed = {}
    for i, shard in enumerate(shards, start=1):
        new = f"model-{i:05d}-of-{count:05d}.safetensors"
        if shard != new:
            (folder / shard).rename(folder / new)
        renamed[shard] = new
    mtp_shard = f"model-{count:05d}-of-{count:05d}.safetensors"
    tensors = {PREFIX + name: t.detach().contiguous() for name, t in split_experts(state_dict).items()}
    save_file(tensors, str(folder / mtp_shard), metadata={"format": "pt"})
    weight_map = {name: renamed[shard] for name, shard in weight_map.items()}
    weight_map.update({name: mtp_shard for name in tensors})
    total = sum((folder / shard).stat().st_size for shard in set(weight_map.values()))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    (folder / SINGLE).unlink(missing_ok=True)  # a single-file checkpoint was renamed above
    return folder / mtp_shard
