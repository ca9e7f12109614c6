"""The `athanor` command line: a thin layer over ``athanor.api``.

Exit codes: 0 success; 2 usage or config error: a bad argument, config key or value, a path that is not the kind
of directory the command needs, a config too large for the machine (one line on stderr, no traceback); 1 any
other failure (an AthanorError, such as a damaged checkpoint or data file, prints its message without a
traceback; anything unexpected keeps its traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from athanor.core.errors import AthanorError, ConfigError


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--res` must not silently mean `--resume`
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's own usage errors: same format and exit code as ours
        self.print_usage(sys.stderr)
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="athanor", description="Research writing made into systems you can run and check.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="systems and experiments")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true", help="the README's two tables, made from the registries")

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
    s.add_argument("--scale", default=None, choices=["tiny", "quick", "full"], help="default: quick")
    s.add_argument("--seeds", type=int, default=None,
                   help="seeds per run (default: the experiment's own count for the scale, else 1)")
    s.add_argument("--out", default="runs")
    s.add_argument("--resume", metavar="EXP_DIR", default=None,
                   help="finish an experiment folder: keep completed runs, continue or restart the others; a "
                        "larger --seeds adds seeds")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run whose system has the key (e.g. scorer=clip:PATH)")
    _executor_args(s)
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("sweep", help="one system over a config grid and seeds, as parallel runs")
    s.add_argument("system", nargs="?")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="values of one config key; several --grid make their cartesian product")
    s.add_argument("--seeds", type=int, default=None, help="seeds per grid point (default: 1)")
    s.add_argument("--preset", default=None, help="tiny | quick | full (default: the paper's settings)")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every grid point")
    s.add_argument("--out", default="runs")
    s.add_argument("--resume", metavar="SWEEP_DIR", default=None,
                   help="finish a sweep folder with its saved grid; a larger --seeds adds seeds")
    _executor_args(s)
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("report", help="(re)build report.html for run or experiment directories")
    s.add_argument("dirs", nargs="+", metavar="DIR")
    s.add_argument("--out", default=None, metavar="FILE", help="also copy the (single) report to FILE")

    s = sub.add_parser("archive", help="copy an experiment or sweep folder without checkpoints, to share or resume")
    s.add_argument("dir", metavar="EXP_OR_SWEEP_DIR")
    s.add_argument("dest", metavar="DEST", help="a new folder; resume it with `athanor experiment NAME --resume DEST`")
    s.add_argument("--records-only", action="store_true",
                   help="keep only JSON and JSONL files (configs, summaries, metrics, tables, claims)")

    s = sub.add_parser("claims", help="show an experiment's claims")
    s.add_argument("dir", metavar="RUN_OR_EXPERIMENT_DIR")
    s.add_argument("--json", action="store_true")
    s.add_argument("--reanalyse", action="store_true",
                   help="judge the claims again from the stored runs (after the analysis code changed)")

    s = sub.add_parser("tour", help="every experiment at one scale, one gallery")
    s.add_argument("--scale", default="quick", choices=["tiny", "quick", "full"])
    s.add_argument("--out", default="runs")
    _executor_args(s, single_thread=False)
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("bench", help="throughput, compile time and peak memory per system")
    s.add_argument("systems", nargs="*", help="system or family names (default: all)")
    s.add_argument("--preset", default="quick")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every benchmarked system, as in `athanor run`")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--calls", type=int, default=5)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("data", help="generated datasets (offline-RL point maze): list, build, verify, plot")
    dsub = s.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    d = dsub.add_parser("list", help="cached datasets with their spec, size and whether they verify")
    d.add_argument("--json", action="store_true")
    d = dsub.add_parser("build", help="generate a dataset into the cache (skipped if a verified copy exists)")
    _data_spec_args(d)
    d.add_argument("--force", action="store_true", help="rebuild even if a verified copy is cached")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d = dsub.add_parser("verify", help="check cached datasets against their metadata and sha256")
    d.add_argument("paths", nargs="*", metavar="PATH", help="npz files (default: every cached dataset)")
    d = dsub.add_parser("plot", help="scatter of a dataset's actions (built first if not cached)")
    _data_spec_args(d)
    d.add_argument("--out", required=True, metavar="FILE.png")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _executor_args(p: argparse.ArgumentParser, single_thread: bool = True) -> None:
    p.add_argument("--executor", default="auto", choices=["auto", "local", "ray"],
                   help="auto (default): Ray tasks when Ray is installed (the dist extra) and several runs, not "
                        "tiny ones, are to be made on several cores; local: one after another in this process")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run on this Ray cluster (implies --executor ray); --out must be a shared path")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="runs at once under Ray (default: one per core here, or as the cluster schedules)")
    if single_thread:
        p.add_argument("--single-thread", action="store_true",
                       help="one thread per Ray task (XLA, OpenMP, BLAS); no faster on 2 cores; for many-core nodes")


def _data_spec_args(p: argparse.ArgumentParser) -> None:
    # Defaults stay None here so MazeDataSpec alone holds them (and parsing never imports numpy).
    p.add_argument("--maze", default=None, help="arena | medium | large | giant (default: medium)")
    p.add_argument("--episodes", type=int, default=None, help="number of episodes (default: 1000)")
    p.add_argument("--episode-len", type=int, default=None, help="states per episode (default: 1001)")
    p.add_argument("--noise", type=float, default=None, help="std of the Gaussian action noise (default: 0.5)")
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: 0)")


def _list(args) -> int:
    from athanor.experiments import EXPERIMENTS, get_experiment
    from athanor.systems import SYSTEMS

    # from the registry alone: no system module (and no framework) is imported
    systems = [{"name": spec.name, "family": spec.family, "presets": list(spec.presets), "summary": spec.summary}
               for spec in SYSTEMS.values()]
    experiments = [{"name": n, "scales": ["tiny", "quick", "full"], "summary": get_experiment(n).SUMMARY}
                   for n in EXPERIMENTS]
    if args.json:
        print(json.dumps({"systems": systems, "experiments": experiments}, indent=2))
        return 0
    if args.markdown:
        print(markdown_tables())
        return 0
    print("systems:")
    for s in systems:
        print(f"  {s['name']:<16} {s['family']:<12} {s['summary']}")
    print("experiments:")
    for e in experiments:
        print(f"  {e['name']:<16} {e['summary']}")
    return 0


def markdown_tables() -> str:
    """The README's experiment and system tables, made from the two registries (a test keeps README.md equal)."""
    from athanor.experiments import EXPERIMENTS, get_experiment
    from athanor.systems import SYSTEMS

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| experiment | source | systems | what it checks |", "|---|---|---|---|"]
    for name in EXPERIMENTS:
        module = get_experiment(name)
        used = ", ".join(f"`{u}`" for u in dict.fromkeys(spec.system for spec in module.runs("full")))
        lines.append(f"| `{name}` | {cell(module.SOURCE)} | {used} | {cell(module.SUMMARY)} |")
    lines += ["", "| system | family | what it is |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {s.family} | {cell(s.summary)} |" for s in SYSTEMS.values()]
    return "\n".join(lines)


def _run(args) -> int:
    from athanor.api import resume_run, start_run

    if args.resume and (args.system or args.sets or args.preset):
        raise ConfigError("--resume continues a run with its saved config; drop SYSTEM, --preset and --set")
    if not args.resume and not args.system:
        raise ConfigError("name a system (see `athanor list`) or pass --resume RUN_DIR")
    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after must be at least 1, got {args.stop_after}")
    if args.resume:
        result = resume_run(args.resume, stop_after=args.stop_after, progress=not args.quiet)
    else:
        result = start_run(args.system, preset=args.preset, sets=args.sets, seed=args.seed, out=args.out,
                           stop_after=args.stop_after, progress=not args.quiet)
    if result.status == "completed":
        print(f"report: {result.run_dir / 'report.html'}")
    else:
        print(f"stopped after {result.steps_done} updates; resume with: athanor run --resume {result.run_dir}")
    print(result.run_dir)
    return 0


def _experiment(args) -> int:
    from athanor.api import run_experiment
    from athanor.core.claims import format_table, load

    exp_dir = run_experiment(args.name, scale=args.scale, seeds=args.seeds, out=args.out, progress=not args.quiet,
                             executor=args.executor, address=args.ray_address, workers=args.workers,
                             resume=args.resume, single_thread=args.single_thread, sets=args.sets)
    print(format_table(load(exp_dir)))
    print(f"report: {exp_dir / 'report.html'}")
    return 0


def _sweep(args) -> int:
    from athanor.api import run_sweep, sweep_table

    sweep_dir = run_sweep(args.system, args.grid, seeds=args.seeds, preset=args.preset, sets=args.sets,
                          out=args.out, progress=not args.quiet, executor=args.executor, address=args.ray_address,
                          workers=args.workers, resume=args.resume, single_thread=args.single_thread)
    print(sweep_table(sweep_dir))
    print(f"results: {sweep_dir / 'results.csv'}")
    print(sweep_dir)
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


def _archive(args) -> int:
    from athanor.api import archive

    out = archive(args.dir, args.dest, records_only=args.records_only)
    mib = 2**20
    print(f"{out['dest']}: {out['kept']} of {out['runs']} runs, {out['bytes_after'] / mib:.1f} MiB "
          f"(was {out['bytes_before'] / mib:.1f} MiB)")
    if out["left_out"]:
        print(f"left out, not completed (resuming the archive runs them again): {', '.join(out['left_out'])}")
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
    from athanor.api import reanalyse
    from athanor.core.claims import format_table, load

    if args.reanalyse:
        reanalyse(Path(args.dir))
    items = load(Path(args.dir))
    print(json.dumps(items, indent=2) if args.json else format_table(items))
    return 0


def _tour(args) -> int:
    from athanor.tour import run_tour

    result = run_tour(args.scale, out=args.out, progress=not args.quiet, executor=args.executor,
                      address=args.ray_address, workers=args.workers)
    print(result.summary())
    return 0 if result.ok else 1


def _bench(args) -> int:
    from athanor.api import bench
    from athanor.core.bench import format_table

    if args.calls < 1:
        raise ConfigError(f"--calls must be at least 1, got {args.calls}")
    results = bench(args.systems, preset=args.preset, calls=args.calls, sets=args.sets, seed=args.seed,
                    progress=not args.json)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _data(args) -> int:
    from athanor.data import pointmaze

    if args.data_command == "list":
        rows = pointmaze.list_cached()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print(f"no cached datasets in {pointmaze.cache_dir()}")
        else:
            print(f"{'maze':<8} {'episodes':>8} {'len':>5} {'noise':>6} {'seed':>4} {'transitions':>11} "
                  f"{'MB':>7}  status  path")
            for r in rows:
                status = "ok" if r["ok"] else f"BAD ({r['reason']})"
                print(f"{r['maze']!s:<8} {r['episodes']!s:>8} {r['episode_len']!s:>5} {r['noise']!s:>6} "
                      f"{r['seed']!s:>4} {r['transitions']!s:>11} {r['size'] / 1e6:>7.1f}  {status}  {r['path']}")
        return 0
    if args.data_command == "verify":
        paths = args.paths or [r["path"] for r in pointmaze.list_cached()]
        if not paths:
            print(f"no cached datasets in {pointmaze.cache_dir()}")
        bad = 0
        for path in paths:
            ok, reason = pointmaze.verify(path)
            bad += not ok
            print(f"ok   {path}" if ok else f"BAD  {path}: {reason}")
        return 1 if bad else 0

    given = {k: getattr(args, k) for k in ("maze", "episodes", "episode_len", "noise", "seed")}
    spec = pointmaze.MazeDataSpec(**{k: v for k, v in given.items() if v is not None})
    if args.data_command == "build":
        path = pointmaze.path_for(spec)
        if not args.force and pointmaze.verify(path)[0]:
            print(f"already cached and verified ({spec.transitions} transitions); rebuild with --force")
        else:
            path = pointmaze.build(spec, progress=not args.quiet)
            print(f"{spec.transitions} transitions, {path.stat().st_size / 1e6:.1f} MB")
        print(path)
        return 0
    from athanor.core.artifact_io import write_png
    from athanor.viz.figures import action_scatter

    data = pointmaze.load(spec, progress=not args.quiet)
    image = action_scatter(data["actions"], title=f"data actions ({spec.maze}, noise {spec.noise:g})")
    print(write_png(args.out, image))
    return 0


COMMANDS = {"list": _list, "run": _run, "experiment": _experiment, "sweep": _sweep, "report": _report,
            "archive": _archive, "claims": _claims, "tour": _tour, "bench": _bench, "data": _data}


def _printable(message: str, keep_newlines: bool) -> str:
    """The message with control characters from user input (a stray escape or record separator in a --set
    value) shown as escapes, so a usage error stays one line and cannot drive the terminal."""
    return "".join(ch if ch.isprintable() or (keep_newlines and ch == "\n") else repr(ch)[1:-1] for ch in message)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except AthanorError as e:
        print(f"athanor: error: {_printable(str(e), keep_newlines=e.exit_code != 2)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("athanor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
