"""benchmarks/bench_multicell.py measures what it says: cell updates of populated worlds, and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_quick_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "multicell.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "bench_multicell.py"), "--quick", "--repeats", "2",
                    "--ticks", "20", "--warmup", "40", "--out", str(out)], check=True, capture_output=True,
                   timeout=600)
    res = json.loads(out.read_text())
    assert [(c["size"], c["batch"]) for c in res["configs"]] == [(16, 1), (16, 2)]
    for c in res["configs"]:
        assert c["living_cells_at_end"] > 0  # the timed ticks ran a populated world
        blocks = c["blocks_s"]
        assert len(blocks) == 2
        # the headline is the fastest block: cells x ticks / min(block time)
        assert abs(c["cell_updates_per_s"] - 16 * 16 * c["batch"] * 20 / min(blocks)) <= 0.02 * c["cell_updates_per_s"]
    assert res["target_met_256"] is None and res["git_sha"]
