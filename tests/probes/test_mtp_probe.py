"""probes/mtp_acceptance.py end to end on the tiny checkpoint with an MTP shard: it writes the mtp table and its
report's acceptance equals a direct count over that table."""

import importlib.util
import json
import re
from pathlib import Path

import duckdb
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "probes" / "mtp_acceptance.py"


def load_script():
    spec = importlib.util.spec_from_file_location("mtp_acceptance_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_writes_and_reports(mtp_checkpoint, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps({"id": f"p{i}", "text": text, "label": label}) for i, (text, label) in
                                 enumerate([("the quick brown fox jumps", "a"), ("over the lazy dog again", "b"),
                                            ("and once more, the fox", "a")])) + "\n")
    out = tmp_path / "trace"
    load_script().main(["--model", str(mtp_checkpoint), "--prompts", str(prompts), "--out", str(out),
                        "--dtype", "float32"])
    printed = capsys.readouterr().out
    con = duckdb.connect()  # its own connection: another test can leave a result pending on the default one
    assert "by_label" in printed and "routing_overlap" in printed
    assert not re.search(r"\d\.\d{5,}", printed)  # three decimals, never float32 noise
    rows = con.sql(f"select seq_id, avg(accepted::int) from read_parquet('{out}/mtp/**/*.parquet') group by all")
    per_seq = dict(rows.fetchall())
    assert set(per_seq) == {"p0", "p1", "p2"}
    from workbench.analysis.db import Scope, TraceDB
    from workbench.analysis.mtp import acceptance_by_label

    db = TraceDB(out)
    run_id = db.trace.manifests()[0]["run_id"]
    by_label = acceptance_by_label(db, Scope(run_id)).set_index("label")
    counts = dict(con.sql(f"select seq_id, count(*) from read_parquet('{out}/mtp/**/*.parquet') group by all")
                  .fetchall())
    want_a = (per_seq["p0"] * counts["p0"] + per_seq["p2"] * counts["p2"]) / (counts["p0"] + counts["p2"])
    assert by_label.loc["a", "accepted"] == pytest.approx(want_a)


def test_probe_refuses_a_checkpoint_without_mtp(next_checkpoint, tmp_path):
    with pytest.raises(SystemExit, match="this checkpoint has no MTP weights"):
        load_script().main(["--model", str(next_checkpoint), "--out", str(tmp_path / "t"), "--n", "1"])
