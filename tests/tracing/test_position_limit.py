"""A prompt longer than the model's max_position_embeddings is refused in one line before any forward, or truncated
with --max-tokens, which the manifest records per prompt. The tiny Qwen3-Next's limit is lowered to 64 tokens here;
the byte tokenizer makes one token per byte (plus none added), so lengths are known by hand."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from workbench.adapters import get_adapter
from workbench.cli import app
from workbench.inputs.prompts import Prompt
from workbench.loading import LoadedModel
from workbench.trace import open_trace
from workbench.tracing import trace_prompts
from workbench.tracing.batching import check_positions, max_positions

LIMIT = 64


@pytest.fixture
def limited(tiny_next, tokenizer, monkeypatch):
    monkeypatch.setattr(tiny_next.config, "max_position_embeddings", LIMIT)
    forwards = []
    handle = tiny_next.register_forward_hook(lambda *_: forwards.append(1))
    yield LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None), forwards
    handle.remove()


def _prompts(tokenizer):
    short, long = "a" * 10, "b" * 100
    assert len(tokenizer(short)["input_ids"]) == 10 and len(tokenizer(long)["input_ids"]) == 100
    return [Prompt("short", short), Prompt("long", long)]


def test_a_prompt_beyond_the_limit_is_refused_before_any_forward(limited, tokenizer, tmp_path):
    loaded, forwards = limited
    with pytest.raises(ValueError) as error:
        trace_prompts(loaded, _prompts(tokenizer), tmp_path / "t", progress=False)
    message = str(error.value)
    assert "\n" not in message and message.startswith("prompt 'long' is 100 tokens, beyond the model's "
                                                       "max_position_embeddings (64)")
    assert "--max-tokens 64" in message
    assert forwards == [] and not (tmp_path / "t").exists()  # not even the short prompt before it ran
    with pytest.raises(ValueError, match=r"'long' is 80 tokens \(after --max-tokens 80\)"):
        trace_prompts(loaded, _prompts(tokenizer), tmp_path / "t", max_tokens=80, progress=False)
    assert forwards == []


def test_max_tokens_truncates_and_the_manifest_says_so(limited, tokenizer, tmp_path):
    loaded, forwards = limited
    summary = trace_prompts(loaded, _prompts(tokenizer), tmp_path / "t", max_tokens=LIMIT, progress=False)
    trace = open_trace(tmp_path / "t")
    manifest = trace.manifests()[0]
    records = {p["id"]: p for p in manifest["prompts"]}
    assert manifest["max_tokens"] == LIMIT and summary.num_tokens == 10 + LIMIT
    assert records["long"]["num_tokens"] == LIMIT and records["long"]["truncated_from"] == 100
    assert "truncated_from" not in records["short"]
    tokens = trace.read("tokens").to_pandas()
    assert tokens.groupby("seq_id").size().to_dict() == {"long": LIMIT, "short": 10} and len(forwards) == 2


def test_the_byte_bound_tokenises_only_prompts_that_could_pass(tokenizer):
    class Counting:
        calls = 0

        def __call__(self, *args, **kwargs):
            Counting.calls += 1
            return tokenizer(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    counting = Counting()
    check_positions(counting, [Prompt("a", "x" * 40), Prompt("b", "y" * 48)], None, LIMIT)  # 40 + 16 <= 64, 48 + 16
    assert Counting.calls == 0
    check_positions(counting, [Prompt("c", "z" * 60)], None, LIMIT)  # could pass: tokenised, 60 <= 64 tokens
    assert Counting.calls == 1
    check_positions(counting, [Prompt("d", "z" * 600)], 64, LIMIT)  # --max-tokens within the limit: nothing to do
    assert Counting.calls == 1


def test_the_cli_refuses_in_one_line(next_checkpoint, tmp_path):
    folder = shutil.copytree(next_checkpoint, tmp_path / "limited")
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = LIMIT
    (folder / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--text", "c" * 100, "--out",
                                      str(tmp_path / "t")])
    assert result.exit_code == 2 and "beyond the model's max_position_embeddings (64)" in result.output
    refusal = [line for line in result.output.splitlines() if line.strip() and not line.startswith("Loading weights")]
    assert len(refusal) == 1 and refusal[0].startswith("error: prompt 'text-0' is 100 tokens"), refusal
    assert not (tmp_path / "t").exists()


def test_max_positions_reads_the_config_or_its_text_config():
    from types import SimpleNamespace

    assert max_positions(SimpleNamespace(max_position_embeddings=4096)) == 4096
    assert max_positions(SimpleNamespace(text_config=SimpleNamespace(max_position_embeddings=128))) == 128
    assert max_positions(SimpleNamespace()) is None
