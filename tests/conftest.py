"""Shared fixtures: tiny seeded models and checkpoints the tests write themselves (no downloads)."""

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Without a GPU, Triton kernels (tests/ops/test_triton_norms.py) run under triton's interpreter on CPU tensors;
    # the variable is read when triton's own library is first imported, so it is set before any test imports it.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from support.toy import build_model, byte_tokenizer, qwen3_5_moe_config, qwen3_next_config, write_checkpoint


@pytest.fixture(scope="session", autouse=True)
def _cpu_models_run_where_fla_is_installed():
    """On a GPU machine with fla installed, transformers before 5.25 sends the CPU tensors of the tests' tiny models
    to fla's Triton kernels, which fail there. For the whole session, the hybrid families' kernel globals send tensors
    off CUDA to their torch reference, as transformers 5.25 does itself (workbench/capture/kernel_device.py; capture
    does the same while it is open). Nothing is patched where fla is not installed."""
    import sys

    import transformers

    from workbench.adapters import registered_adapters
    from workbench.capture.kernel_device import kernels_by_device
    from workbench.capture.recorder import remove_all

    patches = []
    for adapter in registered_adapters():
        if adapter.linear_attention is not None:
            file = sys.modules[getattr(transformers, adapter.architecture).__module__]
            patches += kernels_by_device([file], [name for name, _ in adapter.linear_attention.kernels()])
    yield
    remove_all(patches)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    return byte_tokenizer()


@pytest.fixture(scope="session")
def tiny_next(tokenizer):
    return build_model(qwen3_next_config(num_layers=4, vocab_size=len(tokenizer)), seed=1)


@pytest.fixture(scope="session")
def tiny_35moe(tokenizer):
    return build_model(qwen3_5_moe_config(num_layers=4, vocab_size=len(tokenizer)), seed=2)


@pytest.fixture(scope="session")
def next_checkpoint(tmp_path_factory, tiny_next, tokenizer):
    """A sharded safetensors checkpoint with an index, laid out like the real release."""
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-qwen3-next"
    return write_checkpoint(folder, tiny_next, tokenizer, max_shard_size="1MB")


pytest_plugins = ["hand_trace"]  # the hand-written trace fixture (tests/hand_trace.py)


@pytest.fixture(scope="session")
def mtp_checkpoint(tmp_path_factory, tiny_next, tokenizer):
    """The tiny Qwen3-Next trunk sharded like the release, plus an `mtp.*` shard of random weights (its own shard)."""
    from workbench.mtp import MTPHead, write_mtp_shard

    folder = write_checkpoint(tmp_path_factory.mktemp("mtp") / "tiny-next-mtp", tiny_next, tokenizer,
                              max_shard_size="1MB")
    torch.manual_seed(3)
    head = MTPHead(tiny_next)
    with torch.no_grad():
        for p in head.parameters():  # norms start at zero (x * (1 + w)) and fused experts empty: randomise all
            p.normal_(0.0, 0.2)
    write_mtp_shard(folder, head.state_dict())
    return folder
