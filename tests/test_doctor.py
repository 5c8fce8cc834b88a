"""`workbench doctor`: the versions it prints are the installed ones, every registered family is checked, a family
whose sites resolve reads ok with exit 0, and a moved site (a missing kernel global, a router returning another
tuple) reads as that family's one-line refusal with exit 1."""

from importlib import metadata

import pytest
from typer.testing import CliRunner

from workbench.adapters import registered_adapters
from workbench.cli import app
from workbench.doctor import families

pytestmark = pytest.mark.filterwarnings("ignore")


def _doctor(*args):
    result = CliRunner().invoke(app, ["doctor", *args])
    return result.exit_code, result.output.splitlines()


def test_every_registered_family_is_checked():
    assert sorted(families()) == sorted(adapter.name for adapter in registered_adapters())


def test_a_family_whose_sites_resolve_is_ok():
    code, lines = _doctor("--family", "qwen3_next", "--family", "mixtral")
    assert code == 0
    assert "  ok   qwen3_next: routing, attention, deltanet, expert_saliency, attribution, mtp" in lines
    assert "  ok   mixtral: routing, attention, expert_saliency, attribution" in lines
    rows = lines[lines.index("versions") + 1:lines.index("fast paths")]
    versions = dict(line.split(None, 1) for line in rows if "tested on" not in line)
    assert versions["transformers"] == metadata.version("transformers")
    assert versions["torch"] == metadata.version("torch")
    assert any(line.startswith("  transformers tested on   >=5.17,<5.26") for line in lines)


def test_a_renamed_kernel_argument_fails_the_family_in_one_line(monkeypatch):
    """The model still runs (the kernel is called positionally), but the capture cannot read `value`."""
    import transformers.models.qwen3_next.modeling_qwen3_next as modeling

    kernel = modeling.torch_chunk_gated_delta_rule

    def renamed(query, key, v, g, beta, **kwargs):
        return kernel(query, key, v, g, beta, **kwargs)

    monkeypatch.setattr(modeling, "torch_chunk_gated_delta_rule", renamed)
    code, lines = _doctor("--family", "qwen3_next")
    assert code == 1
    assert "  FAIL qwen3_next: routing, attention, deltanet FAILED, expert_saliency, attribution, mtp" in lines
    reason = next(line for line in lines if line.strip().startswith("deltanet: "))
    assert "SiteError: qwen3_next: transformers.models.qwen3_next.modeling_qwen3_next.torch_chunk_gated_delta_rule: " \
           "takes no argument 'value'" in reason
    assert not any("the plain forward fails" in line for line in lines)


def test_a_missing_kernel_global_is_refused_where_the_model_cannot_run(monkeypatch):
    import transformers.models.qwen3_next.modeling_qwen3_next as modeling

    monkeypatch.delattr(modeling, "torch_recurrent_gated_delta_rule")
    code, lines = _doctor("--family", "qwen3_next")
    assert code == 1
    reason = next(line for line in lines if line.strip().startswith("deltanet: "))
    assert reason.endswith("torch_recurrent_gated_delta_rule: the kernel global is missing (transformers "
                           f"{metadata.version('transformers')} installed; the workbench is tested on transformers "
                           ">=5.17,<5.26)")


def test_a_router_returning_another_tuple_fails_routing(monkeypatch):
    from transformers.models.mixtral.modeling_mixtral import MixtralTopKRouter

    forward = MixtralTopKRouter.forward
    monkeypatch.setattr(MixtralTopKRouter, "forward", lambda self, hidden: forward(self, hidden)[1:])
    code, lines = _doctor("--family", "mixtral")
    assert code == 1
    reason = next(line for line in lines if line.strip().startswith("routing: "))
    assert "returns tuple of 2, not (logits, top-k weights, top-k ids)" in reason
    assert any(line.strip().startswith("the plain forward fails: ValueError") for line in lines)


def test_an_unknown_family_or_device_is_refused():
    code, lines = _doctor("--family", "gpt2")
    assert code == 2 and "unknown family gpt2" in lines[-1]
    code, lines = _doctor("--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in lines[-1]
