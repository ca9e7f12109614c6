"""The PyTorch baseline of `athanor bench iql`: a straightforward eager implementation of the same IQL update.

    python benchmarks/torch_iql_baseline.py [--head awr] [--batch 256] [--hidden 256] [--updates 300]
                                            [--warmup 30] [--compile]

Prints one JSON object: ``{"unit": "updates", "per_s", "threads", "torch", ...}``. The implementation lives in
``athanor.systems.offline_rl.torch_baseline`` (so that ``athanor bench`` can time it in the same process as the
JAX update); this script only runs it. Needs torch: ``pip install -e '.[bench]'``.

Caveat: torch runs with its default intra-op threads (all cores). On a machine shared with other jobs its eager
throughput collapses (several-fold), so only compare numbers measured side by side on an otherwise idle machine.
``--compile`` also times ``torch.compile`` (``compiled_per_s``, ``compile_s``); the headline stays eager.
"""

from __future__ import annotations

import argparse
import json

from athanor.systems.offline_rl.torch_baseline import HEADS, measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", default="awr", choices=HEADS)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (25-30 s cold compile)")
    ap.add_argument("--no-layer-norm", action="store_true", help="plain MLPs (the agent's layer_norm=false)")
    args = ap.parse_args()
    print(json.dumps(measure(batch=args.batch, hidden=args.hidden, updates=args.updates, warmup=args.warmup,
                             head=args.head, compile=args.compile, layer_norm=not args.no_layer_norm)))


if __name__ == "__main__":
    main()
