"""The Triton kernel behind `state_norms.triton_norms.chunk_state_norms` (see there for the math and the layout).
Loaded through ops/triton_support.py, which says why each kernel has its own module."""

import triton
import triton.language as tl


@triton.jit
def chunk_norm_sq(
    k_ptr, g_ptr, h_ptr, d_ptr, out_ptr,
    T, N,
    s_kb, s_kt, s_kh,  # k [B, T, Hk, K], unit stride on K
    s_gb, s_gt,  # g [B, T, Hv], unit stride on Hv
    s_hb, s_hn, s_hh, s_hk,  # h [B, N, Hv, K, V], unit stride on V
    s_db, s_dt, s_dh,  # v_new [B, T, Hv, V], unit stride on V
    HV: tl.constexpr, G: tl.constexpr, K: tl.constexpr, BV: tl.constexpr, C: tl.constexpr,
    DOT: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)  # chunk
    bh = tl.program_id(1).to(tl.int64)  # batch row * Hv + value head
    block = tl.program_id(2).to(tl.int64)  # value block
    b, hv = bh // HV, bh % HV
    hk = hv // G  # the key head this value head reads
    t = n * C + tl.arange(0, C)
    real = t < T  # the last chunk may be short: its missing tokens read as g = 0, k = 0, delta = 0
    cols = block * BV + tl.arange(0, BV)
    dims = tl.arange(0, K)

    g = tl.load(g_ptr + b * s_gb + t * s_gt + hv, mask=real, other=0.0).to(tl.float32)
    c = tl.cumsum(g, axis=0)  # [C] cumulative log decay within the chunk
    keys = tl.load(k_ptr + b * s_kb + t[:, None] * s_kt + hk * s_kh + dims[None, :], mask=real[:, None],
                   other=0.0).to(DOT)  # [C, K]
    delta = tl.load(d_ptr + b * s_db + t[:, None] * s_dt + hv * s_dh + cols[None, :], mask=real[:, None],
                    other=0.0).to(DOT)  # [C, BV]
    s0 = tl.load(h_ptr + b * s_hb + n * s_hn + hv * s_hh + dims[:, None] * s_hk + cols[None, :]).to(DOT)  # [K, BV]

    s0_f = s0.to(tl.float32)
    s0_sq = tl.sum(tl.sum(s0_f * s0_f, axis=1), axis=0)  # ||S0[:, block]||^2
    b_j = tl.sum(keys.to(tl.float32) * tl.dot(delta, tl.trans(s0), input_precision="ieee"), axis=1)  # [C]
    m = tl.dot(keys, tl.trans(keys), input_precision="ieee") * tl.dot(delta, tl.trans(delta),
                                                                      input_precision="ieee")  # [C, C]
    r = tl.arange(0, C)
    lower = r[:, None] >= r[None, :]
    d = tl.exp(tl.where(lower, c[:, None] - c[None, :], -float("inf")))  # [C, C], 0 above the diagonal
    ec = tl.exp(c)
    written = tl.sum(tl.dot(d, m, input_precision="ieee") * d, axis=1)
    norm_sq = ec * ec * s0_sq + 2.0 * ec * tl.sum(d * b_j[None, :], axis=1) + written
    out = out_ptr + (bh * tl.num_programs(2) + block) * (N * C) + t  # out [B * Hv, blocks, N * C]
    tl.store(out, norm_sq)
