"""random_model_on_devices: built on the meta device, filled part by part on its devices, dispatched by layer; the
model it gives computes what the same weights compute in an ordinary model, and capture observes it unchanged.
(On this CPU box both "devices" are the CPU; the bench runs it over two GPUs.)"""

import pytest
import torch
from support.placement import layer_device_map, random_model_on_devices
from support.toy import qwen3_next_config
from transformers import AutoModelForCausalLM

from workbench.capture import CaptureSettings, capture


def test_layer_device_map_splits_layers_in_order():
    device_map = layer_device_map(5, ["a", "b"])
    assert [device_map[f"model.layers.{i}"] for i in range(5)] == ["a", "a", "a", "b", "b"]
    assert device_map["model.embed_tokens"] == "a" and device_map["lm_head"] == device_map["model.norm"] == "b"
    with pytest.raises(ValueError, match="at least one device"):
        layer_device_map(4, [])


def test_model_built_on_its_devices_equals_an_ordinary_model_with_its_weights():
    config = qwen3_next_config(4, 259)
    torch.manual_seed(0)
    model, device_map = random_model_on_devices(config, ["cpu", "cpu"], torch.float32)
    assert not any(p.is_meta for p in model.parameters()) and not any(b.is_meta for b in model.buffers())
    experts = model.model.layers[0].mlp.experts.gate_up_proj
    assert abs(experts.std().item() - config.initializer_range) < 0.002  # the class's init, not stale memory
    assert torch.equal(model.model.norm.weight, torch.zeros_like(model.model.norm.weight))  # (1 + w) RMSNorm

    reference = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    reference.load_state_dict(model.state_dict())  # persistent tensors only: rotary buffers are the reference's own
    assert torch.equal(model.model.rotary_emb.inv_freq, reference.model.rotary_emb.inv_freq)
    ids = torch.randint(0, 259, (2, 40))
    with torch.inference_mode():
        expected = reference(input_ids=ids, use_cache=False).logits
        got = model(input_ids=ids, use_cache=False).logits
        with capture(model, CaptureSettings(deltanet=True, attention=True)) as run:
            traced = model(input_ids=ids, use_cache=False).logits
            records = run.collect()
    assert torch.equal(got, expected) and torch.equal(traced, got)
    assert records["routing"].topk_ids.shape[:2] == (4, 80)


def test_the_80b_geometry_bench_runs_at_tiny_size():
    """bench/bench_80b_geometry.py end to end on the CPU (tiny dims): it builds, times both forwards and finds the
    logits equal with capture on (the two-GPU run is the same script with --devices cuda:0 cuda:1)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "bench_80b_geometry.py"
    result = subprocess.run([sys.executable, str(script), "--dims", "tiny", "--layers", "8", "--vocab", "259",
                             "--devices", "cpu", "cpu", "--tokens", "48", "--dtype", "float32", "--reps", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["logits_equal"] is True and row["tokens"] == 48 and row["traced_ms"] > 0
