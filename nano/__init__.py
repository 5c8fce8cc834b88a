"""The nano model's lab: its training recipe (train.py), seed sweep (sweep.py) and evaluation (evaluate.py).

A folder of the repository, not of the installed package: run from the repository root, e.g.
`python -m nano.train --out DIR --minutes 8`. What the library needs stays in workbench/nano/: the shipped
checkpoint, the tokenizer, the model config and the synthetic tasks (data.py) the probes draw from.
"""
