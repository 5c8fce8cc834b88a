"""DeltaNet decays are stored as the float32 log decay g: exp(g) read back keeps relative precision <= 1e-3 down to
exp(g) = 1e-30 (float16 exp(g), the 1.1 storage, is 0 there), through the real table builders and Parquet."""

from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import torch

from workbench.ops.decay import decay_factor
from workbench.capture.deltanet.tables import deltanet_heads_table, deltanet_table

FACTORS = np.array([1.0, 0.9, 1e-2, 6e-5, 1e-8, 1e-15, 1e-22, 1e-30])  # exp(g) per value head


def _capture(n_tokens: int = 3):
    g = torch.from_numpy(np.log(FACTORS)).float()  # [H]
    H, L = len(FACTORS), 2
    per_head = g.expand(L, n_tokens, H).clone()  # [L, n, H]
    zeros = torch.zeros(L, n_tokens)
    return SimpleNamespace(
        layers=[0, 1], positions=torch.arange(n_tokens), head_rows=torch.arange(n_tokens),
        head_state_norm=torch.ones(L, n_tokens, H), head_log_decay=per_head, head_beta=torch.full((L, n_tokens, H), .5),
        head_half_life=torch.ones(L, n_tokens, H), state_norm_mean=zeros, state_norm_max=zeros,
        decay_mean=per_head.exp().mean(-1), log_decay_min=per_head.amin(-1), beta_mean=zeros, beta_max=zeros,
        half_life_mean=zeros, half_life_max=zeros)


def test_exp_of_stored_log_decay_keeps_relative_precision_down_to_1e_30(tmp_path):
    capture = _capture()
    for table in (deltanet_heads_table("s", capture, slice(0, 3)), deltanet_table("s", capture, slice(0, 3))):
        pq.write_table(table, tmp_path / "t.parquet")
        back = pq.read_table(tmp_path / "t.parquet").to_pandas()
        if "log_decay" in back:
            stored = np.stack(back.log_decay.to_numpy())  # [rows, H]
            read = decay_factor(stored)
            assert np.abs(read / FACTORS - 1).max() <= 1e-3
        else:
            read = decay_factor(back.log_decay_min.to_numpy())
            assert np.abs(read / FACTORS.min() - 1).max() <= 1e-3
    assert (FACTORS[4:].astype(np.float16) == 0).all()  # what float16 exp(g) stored: nothing
