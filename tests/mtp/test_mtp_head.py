"""The MTP head: loading `mtp.*` from a sharded release-layout checkpoint, and its forward against a naive
re-implementation written here from the tensors alone (fp32; agreement <= 1e-5 absolute on logits)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from support.toy import write_checkpoint

from workbench.loading import load_model
from workbench.mtp import MTPHead, NoMTPWeights, load_mtp_head, mtp_logits, write_mtp_shard
from workbench.mtp.weights import fuse_experts, mtp_tensor_names, split_experts


def test_mtp_shard_is_its_own_indexed_shard(mtp_checkpoint):
    index = json.loads((mtp_checkpoint / "model.safetensors.index.json").read_text())["weight_map"]
    mtp_shards = {shard for name, shard in index.items() if name.startswith("mtp.")}
    trunk_shards = {shard for name, shard in index.items() if not name.startswith("mtp.")}
    assert len(mtp_shards) == 1 and not mtp_shards & trunk_shards
    count = len(mtp_shards | trunk_shards)
    assert sorted(mtp_shards | trunk_shards) == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    assert all((mtp_checkpoint / shard).is_file() for shard in mtp_shards | trunk_shards)
    names = mtp_tensor_names(mtp_checkpoint)
    assert "mtp.fc.weight" in names and "mtp.layers.0.mlp.experts.31.down_proj.weight" in names  # release layout


def test_trunk_loads_unchanged_beside_mtp(mtp_checkpoint, tiny_next):
    loaded = load_model(str(mtp_checkpoint), dtype="float32")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, tiny_next(input_ids=ids).logits)


def test_expert_fusion_round_trips(tiny_next):
    head = MTPHead(tiny_next)
    with torch.no_grad():
        for p in head.parameters():  # fused experts start as torch.empty (possibly NaN): fill them
            p.normal_()
    state = head.state_dict()
    back = fuse_experts(split_experts(state))
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)


def test_checkpoint_without_mtp_is_refused(next_checkpoint, tiny_next):
    with pytest.raises(NoMTPWeights, match="this checkpoint has no MTP weights"):
        load_mtp_head(tiny_next, next_checkpoint)


def test_mtp_weights_of_another_width_are_refused(tmp_path, tiny_next, tokenizer):
    from support.toy import build_model, qwen3_next_config

    wide = build_model(qwen3_next_config(num_layers=4, vocab_size=len(tokenizer), hidden_size=96), seed=4)
    folder = write_checkpoint(tmp_path / "wide", tiny_next, tokenizer)
    write_mtp_shard(folder, MTPHead(wide).state_dict())
    with pytest.raises(ValueError, match="do not fit this model"):
        load_mtp_head(tiny_next, folder)


# ---- a naive MTP forward from the checkpoint's tensors alone ----

def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w)


def _rotate(x, positions, theta, rotary_dim):
    """Partial rotary (first rotary_dim channels, halves rotated) at integer positions. x: [T, heads, D]."""
    inv_freq = 1.0 / theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    angles = positions[:, None].double() * inv_freq[None]  # [T, rotary_dim/2]
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, None].float(), torch.cat([angles.sin()] * 2, -1)[:, None].float()
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], -1)
    return torch.cat([rot * cos + rotated * sin, rest], -1)


def naive_mtp_logits(t: dict, embed: torch.Tensor, lm_head: torch.Tensor, cfg, ids: torch.Tensor, h: torch.Tensor):
    """ids: [T]; h: [T, H] trunk final-normed hidden; t: `mtp.*` tensors (release names, per expert)."""
    eps, T = cfg.rms_norm_eps, ids.shape[0] - 1
    nq, nkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    x = torch.cat([_rms(embed[ids[1:]], t["mtp.pre_fc_norm_embedding.weight"], eps),
                   _rms(h[:T], t["mtp.pre_fc_norm_hidden.weight"], eps)], -1) @ t["mtp.fc.weight"].T  # [T, H]
    p = "mtp.layers.0."
    a = _rms(x, t[p + "input_layernorm.weight"], eps)
    qg = (a @ t[p + "self_attn.q_proj.weight"].T).view(T, nq, 2 * d)
    q, gate = qg[..., :d], qg[..., d:].reshape(T, nq * d)
    k = (a @ t[p + "self_attn.k_proj.weight"].T).view(T, nkv, d)
    v = (a @ t[p + "self_attn.v_proj.weight"].T).view(T, nkv, d)
    q, k = _rms(q, t[p + "self_attn.q_norm.weight"], eps), _rms(k, t[p + "self_attn.k_norm.weight"], eps)
    rope = cfg.rope_parameters
    rotary_dim = int(d * rope["partial_rotary_factor"])
    positions = torch.arange(T)
    q, k = _rotate(q, positions, rope["rope_theta"], rotary_dim), _rotate(k, positions, rope["rope_theta"], rotary_dim)
    out = torch.zeros(T, nq, d)
    for head in range(nq):
        kv = head // (nq // nkv)
        scores = (q[:, head] @ k[:, kv].T) / math.sqrt(d)  # [T, T]
        scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        out[:, head] = scores.softmax(-1) @ v[:, kv]
    x = x + (out.reshape(T, nq * d) * torch.sigmoid(gate)) @ t[p + "self_attn.o_proj.weight"].T
    m = _rms(x, t[p + "post_attention_layernorm.weight"], eps)
    probs = (m @ t[p + "mlp.gate.weight"].T).softmax(-1)  # [T, E]
    top_w, top_i = probs.topk(cfg.num_experts_per_tok, dim=-1)
    top_w = top_w / top_w.sum(-1, keepdim=True)
    moe = torch.zeros_like(m)
    for row in range(T):
        for w, e in zip(top_w[row], top_i[row].tolist()):
            e_ = f"{p}mlp.experts.{e}."
            hidden = F.silu(m[row] @ t[e_ + "gate_proj.weight"].T) * (m[row] @ t[e_ + "up_proj.weight"].T)
            moe[row] += w * (hidden @ t[e_ + "down_proj.weight"].T)
    s = "mlp.shared_expert."
    shared = (F.silu(m @ t[p + s + "gate_proj.weight"].T) * (m @ t[p + s + "up_proj.weight"].T)) @ t[p + s + "down_proj.weight"].T
    moe = moe + torch.sigmoid(m @ t[p + "mlp.shared_expert_gate.weight"].T) * shared
    x = x + moe
    return _rms(x, t["mtp.norm.weight"], eps) @ lm_head.T  # [T, V]


def test_mtp_forward_equals_naive_reimplementation(mtp_checkpoint):
    from safetensors.torch import load_file

    loaded = load_model(str(mtp_checkpoint), dtype="float32")
    model = loaded.model
    head = load_mtp_head(model, mtp_checkpoint)
    index = json.loads((mtp_checkpoint / "model.safetensors.index.json").read_text())["weight_map"]
    tensors = {}
    for shard in {s for n, s in index.items() if n.startswith("mtp.")}:
        tensors.update(load_file(str(mtp_checkpoint / shard)))
    ids = torch.randint(0, 250, (1, 23), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        trunk = model.model(input_ids=ids)
        got = mtp_logits(model, head, ids, trunk.last_hidden_state)[0]  # [T-1, V]
        want = naive_mtp_logits(tensors, model.get_input_embeddings().weight, model.get_output_embeddings().weight,
                                model.config, ids[0], trunk.last_hidden_state[0])
    assert got.shape == (22, model.config.vocab_size)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
