"""Analysis of trace folders: DuckDB queries and pure reductions, small frames out (no hooks, no Streamlit).

db.py             TraceDB (one DuckDB connection, a view per table) and Scope (run, layers, label, sequence, positions)
routing.py        expert load, load by label, load drift, router-metric distributions
balance.py        balance per layer, Jensen-Shannon divergence between loads (pure pandas/numpy)
routing_structure.py  vocabulary specialisation, co-activation, layer transitions, agreement between runs
deltanet.py       state-norm curves, gate and half-life summaries, recall curves, spectra, run differences
needle.py         needle (span) mass, defined once: per (layer, head) mean over query rows after the span; max head
attention.py      sink and entropy per head, default query row, top-k keys, gates, retrieval
long_context.py   needle_sweep grids;  tokens.py  per-token metrics for the token explorer
summary.py        `workbench info`;  retrieval.py  retrieval-head scoring (Wu et al. 2024) used by the probe
"""
