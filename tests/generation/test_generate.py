"""Tracing a generation is exact: under capture, generate() returns the same logits bit for bit and the same tokens;
the rows of every decoded token equal the rows one full forward over prompt + generated tokens gives (expert ids
exactly; weights, router summaries, state norms and attention statistics to float tolerance), on every family."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from workbench.adapters import FULL_ATTENTION, LINEAR_ATTENTION, adapter_for_config
from workbench.adapters.tiny import build_family_model
from workbench.capture import CaptureSettings, SequenceInfo, capture
from workbench.doctor import families
from workbench.generation import GenerationSettings, generate, generate_traced
from workbench.trace import open_trace
from workbench.tracing import encode_prompt, token_strings
from workbench.inputs.prompts import Prompt


def every_kind(model) -> CaptureSettings:
    """Every capture kind the model has sites for; attention at every token (the full forward analyses the rows a
    decode step analyses)."""
    adapter = adapter_for_config(model.config)
    kinds = adapter.layer_kinds(model.config)
    return CaptureSettings(routing=adapter.router is not None, attention=FULL_ATTENTION in kinds, attention_stride=1,
                           deltanet=LINEAR_ATTENTION in kinds, expert_saliency=adapter.router is not None)


def prompt_ids(vocab: int, length: int = 9, seed: int = 4) -> torch.Tensor:
    return torch.randint(3, vocab, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("sampling", [GenerationSettings(max_new_tokens=7),
                                      GenerationSettings(max_new_tokens=7, temperature=0.8, top_p=0.9, seed=5)],
                         ids=["greedy", "sampled"])
def test_logits_under_capture_equal_plain_generate(tiny_next, tokenizer, sampling):
    ids = prompt_ids(tiny_next.config.vocab_size)
    plain = generate(tiny_next, tokenizer, ids, sampling, feed_last=False, keep_logits=True)
    with capture(tiny_next, every_kind(tiny_next)):
        traced = generate(tiny_next, tokenizer, ids, sampling, keep_logits=True)
    assert traced.token_ids.tolist() == plain.token_ids.tolist() and len(plain.token_ids) == 7
    assert torch.equal(traced.logits, plain.logits)
    reference = torch.log_softmax(plain.logits.double(), -1).gather(-1, torch.tensor(plain.token_ids)[:, None])
    np.testing.assert_allclose(traced.logprobs, reference.squeeze(-1).numpy(), atol=1e-5)


def _frames(tables: dict) -> dict:
    frames = {}
    for name, table in tables.items():
        frame = table.to_pandas()
        keys = [k for k in ("seq_id", "layer", "position", "head", "expert") if k in frame.columns]
        frames[name] = frame.sort_values(keys).reset_index(drop=True)
    return frames


def _assert_rows_equal(got, want, table: str) -> None:
    assert list(got.columns) == list(want.columns) and len(got) == len(want), table
    for column in got.columns:
        left, right = got[column].to_numpy(), want[column].to_numpy()
        if len(left) and isinstance(left[0], np.ndarray):
            left, right = np.stack(left), np.stack(right)
        if column in ("topk_ids", "layer", "position", "head", "expert", "count", "seq_id", "token_id", "tokens"):
            assert np.array_equal(left, right), f"{table}.{column} differs"
        elif left.dtype.kind == "f":
            np.testing.assert_allclose(left.astype(float), right.astype(float), rtol=2e-3, atol=2e-4,
                                       err_msg=f"{table}.{column}")


@pytest.mark.parametrize("family", families())
def test_decode_rows_equal_one_full_forward(family, tokenizer):
    model = build_family_model(family, seed=1).eval()
    settings = every_kind(model)
    ids = prompt_ids(model.config.get_text_config().vocab_size)
    with capture(model, settings) as run:
        generation = generate(model, tokenizer, ids, GenerationSettings(max_new_tokens=6))
        total = ids.shape[1] + len(generation.token_ids)
        decoded = _frames(run.build_tables(run.collect(), [SequenceInfo("s", total)]))
    full = torch.cat([ids, torch.tensor(generation.token_ids)[None]], dim=1)
    with torch.no_grad(), capture(model, settings) as run:
        model(input_ids=full, use_cache=False)
        forward = _frames(run.build_tables(run.collect(), [SequenceInfo("s", total)]))
    assert sorted(decoded) == sorted(forward) and "routing" in decoded or "deltanet" in decoded
    for table in forward:
        _assert_rows_equal(decoded[table], forward[table], table)
    if "routing" in decoded:  # the decode steps' rows are there: one per generated token and MoE layer
        assert decoded["routing"]["position"].max() == total - 1


def test_generate_traced_adds_phase_and_logprobs(tiny_next, tokenizer):
    encoded = encode_prompt(tokenizer, 0, Prompt("p", "a prompt to continue"), None)
    with capture(tiny_next, CaptureSettings(deltanet=True)) as run:
        generation, tables = generate_traced(run, tiny_next, tokenizer, encoded, GenerationSettings(max_new_tokens=4),
                                             token_strings(tokenizer))
    length = len(encoded.token_ids)
    tokens = tables["tokens"].to_pydict()
    assert tokens["phase"] == ["prefill"] * length + ["decode"] * 4
    assert tokens["token_id"][length:] == generation.token_ids.tolist()
    assert tokens["logprob"][:length] == [None] * length
    np.testing.assert_allclose(tokens["logprob"][length:], generation.logprobs, rtol=1e-6)
    for name in ("routing", "deltanet"):
        table = tables[name].to_pydict()
        assert all((p >= length) == (phase == "decode") for p, phase in zip(table["position"], table["phase"]))
        assert table["phase"].count("decode") == 4 * len(set(table["layer"]))


def test_generate_cli_writes_a_run_and_resumes(tmp_path, next_checkpoint, tiny_next, monkeypatch):
    from workbench.cli import build_app
    import workbench.generation.run as generation_run

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "text": f"prompt number {i}"}) + "\n" for i in range(3)))
    app, runner = build_app(), CliRunner()
    args = ["generate", "--model", str(next_checkpoint), "--dtype", "float32", "--prompts", str(prompts),
            "--max-new-tokens", "5", "--deltanet", "--part-tokens", "1"]
    real, calls = generation_run.generate_traced, []

    def dies_on_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*a, **k)

    monkeypatch.setattr(generation_run, "generate_traced", dies_on_the_third)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "t")])
    assert isinstance(result.exception, RuntimeError)
    (run_id,) = [p.stem for p in (tmp_path / "t" / "runs").glob("*.json")]
    monkeypatch.setattr(generation_run, "generate_traced", real)
    resumed = runner.invoke(app, [*args, "--out", str(tmp_path / "t"), "--resume", run_id])
    assert resumed.exit_code == 0 and "2 committed earlier, skipped" in resumed.output, resumed.output
    fresh = runner.invoke(app, [*args, "--out", str(tmp_path / "f")])
    assert fresh.exit_code == 0, fresh.output

    from table_compare import assert_same_tables, trace_frames

    assert_same_tables(trace_frames(tmp_path / "t"), trace_frames(tmp_path / "f"))
    manifest = open_trace(tmp_path / "t").manifests()[0]
    assert manifest["generation"]["max_new_tokens"] == 5 and [p["id"] for p in manifest["prompts"]] == ["p0", "p1",
                                                                                                          "p2"]
    record = manifest["prompts"][0]
    assert record["new_tokens"] == 5 and record["stop_reason"] == "length"
    tokens = open_trace(tmp_path / "t").read("tokens").to_pandas()
    first = tokens[tokens.seq_id == "p0"].sort_values("position")
    assert first.phase.tolist().count("decode") == 5 and record["num_tokens"] == len(first)


@pytest.mark.parametrize("args, message", [
    (["--top-p", "0.5"], "top_p needs sampling: give a temperature > 0"),
    (["--mtp"], "--mtp scores the MTP head's teacher-forced drafts"),
    (["--speculative", "eagle"], "speculative must be 'mtp'"),
    (["--max-new-tokens", "0"], "max_new_tokens must be an integer >= 1, got 0"),
    (["--temperature", "-1"], "temperature must be a number >= 0"),
])
def test_generate_refuses_bad_options_in_one_line(tmp_path, args, message):
    from workbench.cli import build_app

    result = CliRunner().invoke(build_app(), ["generate", "--text", "x", "--out", str(tmp_path / "t"), *args])
    assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "t").exists()


def test_docs_generation_examples_run(tmp_path):
    """The commands and the Python block of docs/tutorials/generation.md, with traces/gen in a temporary folder."""
    import re
    import shlex
    from pathlib import Path

    from workbench.cli import build_app

    section = (Path(__file__).resolve().parents[2] / "docs" / "tutorials" / "generation.md").read_text()
    commands = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0].strip().splitlines()
    app, out = build_app(), tmp_path / "gen"
    for line in commands:
        args = shlex.split(line.replace("traces/gen", str(out)))
        assert args[0] == "workbench"
        result = CliRunner().invoke(app, args[1:])
        assert result.exit_code == 0, result.output
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        exec(compile(block.replace("traces/gen", str(out)), "README.md", "exec"), namespace)  # noqa: S102
    generated = namespace["generated"]
    assert len(generated) == 2 * 24 and (generated.logprob <= 0).all()
    trace = open_trace(out)
    plain, speculative = [m["prompts"][0]["generated_text"] for m in trace.manifests()]
    assert plain == speculative  # greedy speculative decoding emits exactly what plain greedy decoding does
    assert trace.has_rows("drafts")


def test_generation_refuses_a_prompt_that_cannot_fit_with_its_new_tokens(tmp_path, next_checkpoint):
    from workbench.cli import build_app
    from workbench.loading import load_model

    limit = load_model(str(next_checkpoint)).model.config.max_position_embeddings
    text = "x" * (limit - 3)  # fits a trace, not a trace plus 8 new tokens
    result = CliRunner().invoke(build_app(), ["generate", "--model", str(next_checkpoint), "--text", text,
                                              "--max-new-tokens", "8", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "beyond the model's max_position_embeddings" in result.output, result.output
    assert not (tmp_path / "t").exists()
