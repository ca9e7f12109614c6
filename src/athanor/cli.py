"""The `athanor` command line (DESIGN §4).

Exit codes: 0 success; 2 usage or config error (one line on stderr, no traceback); 1 any other failure
(an AthanorError prints its message without a traceback; anything unexpected keeps its traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from athanor.core.errors import AthanorError, ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: same format and exit code as ours
        self.print_usage(sys.stderr)
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="athanor", description="Research writing made into systems you can run and check.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="systems and experiments")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("run", help="train one system through the run loop")
    s.add_argument("system", nargs="?")
    s.add_argument("--preset", default=None, help="tiny | quick | full (default: the paper's settings)")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="runs")
    s.add_argument("--resume", metavar="RUN_DIR", default=None)
    s.add_argument("--stop-after", type=int, default=None, metavar="UPDATES",
                   help="stop (with a checkpoint) after this many updates; continue with --resume")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("experiment", help="run an experiment: several runs, a comparison, claims")
    s.add_argument("name")
    s.add_argument("--scale", default="quick", choices=["tiny", "quick", "full"])
    s.add_argument("--seeds", type=int, default=1)
    s.add_argument("--out", default="runs")
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("report", help="(re)build report.html for run or experiment directories")
    s.add_argument("dirs", nargs="+", metavar="DIR")
    s.add_argument("--out", default=None, metavar="FILE", help="also copy the (single) report to FILE")

    s = sub.add_parser("claims", help="show an experiment's claims")
    s.add_argument("dir", metavar="RUN_OR_EXPERIMENT_DIR")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("tour", help="every experiment at one scale, one gallery")
    s.add_argument("--scale", default="quick", choices=["tiny", "quick", "full"])
    s.add_argument("--out", default="runs")
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("bench", help="throughput, compile time and peak memory per system")
    s.add_argument("systems", nargs="*")
    s.add_argument("--preset", default="quick")
    s.add_argument("--calls", type=int, default=5)
    s.add_argument("--json", action="store_true")
    return p


def _list(args) -> int:
    from athanor.experiments import EXPERIMENTS, get_experiment
    from athanor.systems import SYSTEMS

    systems = []
    for spec in SYSTEMS.values():
        systems.append({"name": spec.name, "family": spec.family, "presets": list(spec.load().PRESETS),
                        "summary": spec.summary})
    experiments = [{"name": n, "scales": ["tiny", "quick", "full"], "summary": get_experiment(n).SUMMARY}
                   for n in EXPERIMENTS]
    if args.json:
        print(json.dumps({"systems": systems, "experiments": experiments}, indent=2))
        return 0
    print("systems:")
    for s in systems:
        print(f"  {s['name']:<16} {s['family']:<12} {s['summary']}")
    print("experiments:")
    for e in experiments:
        print(f"  {e['name']:<16} {e['summary']}")
    return 0


def _run(args) -> int:
    from athanor.core.runloop import resume_run, start_run

    if args.resume:
        if args.system or args.sets or args.preset:
            raise ConfigError("--resume continues a run with its saved config; drop SYSTEM, --preset and --set")
        result = resume_run(args.resume, stop_after=args.stop_after, progress=not args.quiet)
    else:
        if not args.system:
            raise ConfigError("name a system (see `athanor list`) or pass --resume RUN_DIR")
        result = start_run(args.system, preset=args.preset, sets=args.sets, seed=args.seed, out=args.out,
                           stop_after=args.stop_after, progress=not args.quiet)
    if result.status == "completed":
        print(f"report: {result.run_dir / 'report.html'}")
    else:
        print(f"stopped after {result.steps_done} updates; resume with: athanor run --resume {result.run_dir}")
    print(result.run_dir)
    return 0


def _experiment(args) -> int:
    from athanor.core.claims import format_table, load
    from athanor.core.experiment import run_experiment

    exp_dir = run_experiment(args.name, scale=args.scale, seeds=args.seeds, out=args.out,
                             progress=not args.quiet)
    print(format_table(load(exp_dir)))
    print(f"report: {exp_dir / 'report.html'}")
    return 0


def _report(args) -> int:
    from athanor.report.html import experiment_report, run_report

    if args.out and len(args.dirs) != 1:
        raise ConfigError("--out takes one DIR")
    for d in map(Path, args.dirs):
        if (d / "experiment.json").is_file():
            path = experiment_report(d)
        elif (d / "config.json").is_file():
            path = run_report(d)
        else:
            raise ConfigError(f"{d} is neither a run directory (config.json) nor an experiment (experiment.json)")
        if args.out:
            path = _relocate(path, Path(args.out))
        print(path)
    return 0


def _relocate(report: Path, out: Path) -> Path:
    """Write a copy of ``report`` at ``out`` with its relative links re-pointed so images still load."""
    import os
    import re
    from urllib.parse import quote, unquote

    base = report.parent.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    def fix(m: re.Match) -> str:
        attr, link = m.group(1), m.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", link, re.I):
            return m.group(0)
        rel = os.path.relpath(base / unquote(link), out.parent.resolve())
        return f'{attr}="{quote(rel)}"'

    out.write_text(re.sub(r'\b(src|href)="([^"]*)"', fix, report.read_text()))
    return out


def _claims(args) -> int:
    from athanor.core.claims import format_table, load

    items = load(Path(args.dir))
    print(json.dumps(items, indent=2) if args.json else format_table(items))
    return 0


def _tour(args) -> int:
    from athanor.core.experiment import run_experiment
    from athanor.experiments import EXPERIMENTS

    for name in EXPERIMENTS:
        print(run_experiment(name, scale=args.scale, out=args.out, progress=not args.quiet))
    print(f"gallery: {Path(args.out) / 'index.html'}")
    return 0


def _bench(args) -> int:
    from athanor.core.bench import bench, format_table
    from athanor.systems import SYSTEMS, get_system

    names = args.systems or list(SYSTEMS)
    for n in names:
        get_system(n)
    results = bench(names, preset=args.preset, calls=args.calls, progress=not args.json)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


COMMANDS = {"list": _list, "run": _run, "experiment": _experiment, "report": _report, "claims": _claims,
            "tour": _tour, "bench": _bench}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except AthanorError as e:
        print(f"athanor: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("athanor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
