"""The `tt` command: collect, train, eval, bench, report, render, quickstart, config.

Every subcommand takes `--preset NAME` and trailing `key=value` overrides (e.g. `train.lr=3e-4`).
Heavy modules are imported inside each handler so `tt --help` stays fast. User errors (TTError,
ConfigError) print one line and exit 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .config import RunConfig, config_to_dict, list_presets, load_config
from .errors import ConfigError, TTError, one_line_warnings
from .lab import EXPERIMENTS, run_experiment

__all__ = ["main"]


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=None, help=f"preset name {list_presets()} or YAML path")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4")


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """The one opt-in flag of every command that can make an env from a dataset or run."""
    parser.add_argument(
        "--trust-env-code",
        action="store_true",
        help="let the run's env spec import and run the code it names (eval.trust_env_code)",
    )


def _add_trust_args(parser: argparse.ArgumentParser) -> None:
    _add_trust_flag(parser)
    parser.add_argument(
        "--ignore-checksums",
        action="store_true",
        help="load weights and discretizer whose checksums do not match (files changed on purpose)",
    )


def _config(args: argparse.Namespace) -> RunConfig:
    return load_config(args.preset, args.overrides)


def _cmd_config(args: argparse.Namespace) -> int:
    if args.action == "keys":
        from .config import describe_keys

        for key, type_name, default, doc in describe_keys():
            print(
                f"{key} ({type_name}, default {json.dumps(default)})" + (f": {doc}" if doc else "")
            )
        return 0
    print(json.dumps(config_to_dict(_config(args)), indent=2))
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    if args.recipe is not None:
        from .sources import pointmaze, recipes
        from .sources.recipe_catalog import describe_recipes

        if args.recipe == "list":
            print("\n".join([*describe_recipes(), *pointmaze.describe_pointmaze_recipes()]))
            return 0
        cfg = _config(args)
        if pointmaze.is_pointmaze_recipe(args.recipe):
            for dataset_id in pointmaze.run_pointmaze_recipe(
                args.recipe, cfg.collect, progress=not args.no_progress
            ):
                print(dataset_id)
            return 0
        for summary in recipes.run_recipe(args.recipe, cfg.collect, progress=not args.no_progress):
            for dataset_id in summary["written"] + summary["existing"]:
                print(dataset_id)
        return 0
    from .sources.collect import collect_dataset

    cfg = _config(args)
    result = collect_dataset(cfg.collect, progress=not args.no_progress)
    print(result)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import time

    from .evaluation.evaluate import training_eval_hook
    from .training.summary import train_summary
    from .training.trainer import train

    hook = training_eval_hook(_trust_overrides(args, []))  # used only when train.eval_every > 0
    start = time.perf_counter()
    if args.resume:
        run_dir = train(None, Path(args.resume), resume=True, overrides=args.overrides,
                        eval_fn=hook, verify=not args.ignore_checksums)  # fmt: skip
    else:
        cfg = _config(args)
        run_dir = Path(args.run_dir or Path("runs") / cfg.name)
        train(cfg, run_dir, overwrite=args.overwrite, eval_fn=hook)
    print(train_summary(run_dir, time.perf_counter() - start))
    return 0


def _trust_overrides(args: argparse.Namespace, overrides: list[str] | None = None) -> list[str]:
    """`--trust-env-code` is the override eval.trust_env_code=true, after the user's own."""
    given = args.overrides if overrides is None else overrides
    return [*given, *(["eval.trust_env_code=true"] if args.trust_env_code else [])]


def _cmd_eval(args: argparse.Namespace) -> int:
    from . import runs
    from .evaluation.evaluate import eval_output_dir, evaluate_run
    from .evaluation.outputs import format_summary

    summary = evaluate_run(
        Path(args.run_dir),
        overrides=_trust_overrides(args),
        out=args.out,
        agent_kind=args.agent,
        verify=not args.ignore_checksums,
        checkpoint=args.checkpoint,
    )
    path = eval_output_dir(args.run_dir, args.out) / f"{runs.eval_name(args.agent)}.json"
    print(format_summary(summary, path))
    return 0


def _bench_runner(what: str) -> Callable[..., int]:
    """`tt bench quality|sweep|valuefit|oracle` run experiments (lab/); the others measure speed (bench/)."""
    if what in EXPERIMENTS:
        return run_experiment
    from .bench import run_benchmark

    return run_benchmark


def _cmd_bench(args: argparse.Namespace) -> int:
    run_benchmark = _bench_runner(args.what)

    options: list[str] = []  # each command's own options and overrides: config.parse_options
    if args.device is not None:
        if args.what not in ("plan", "train"):
            raise TTError("--device belongs to `tt bench plan` and `tt bench train`")
        options.append(f"{'eval' if args.what == 'plan' else 'train'}.device={args.device}")
    overrides = _trust_overrides(args, [*options, *args.overrides])
    return run_benchmark(args.what, json_lines=args.json, quick=args.quick, overrides=overrides)


def _cmd_report(args: argparse.Namespace) -> int:
    from .evaluation.report import write_report

    print(write_report(Path(args.run_dir)))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from .evaluation.video import render_run

    recorded = render_run(
        Path(args.run_dir),
        episodes=args.episodes,
        overrides=_trust_overrides(args),
        verify=not args.ignore_checksums,
    )
    for episode in recorded:
        print(episode)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from .share.hub import push, write_policy_folder

    if args.folder is not None:
        print(write_policy_folder(args.run_dir, args.folder, args.repo or "user/name"))
    elif args.repo is None:
        raise TTError("tt push needs --repo user/name (or --folder DIR to write the files here)")
    else:
        print(push(args.run_dir, args.repo, private=args.private))
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import run_quickstart

    cfg = load_config(args.preset or "quickstart", _trust_overrides(args))
    run_quickstart(cfg, Path(args.run_dir) if args.run_dir else None)
    return 0


_NO_PROGRESS = {
    "train": ["train.progress=false"],
    "eval": ["eval.progress=false"],
    "render": ["eval.progress=false"],
    "quickstart": ["train.progress=false", "eval.progress=false"],
}
"""What `--no-progress` means for each command that takes it (collect reads the flag itself)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tt", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        if name in _NO_PROGRESS or name == "collect":
            p.add_argument("--no-progress", action="store_true", help="no progress bars")
        return p

    p = add(
        "config",
        _cmd_config,
        "show: the resolved config (defaults + preset + overrides); keys: every key with its meaning",
    )
    p.add_argument("action", choices=["show", "keys"])
    _add_config_args(p)

    p = add("collect", _cmd_collect, "run a policy in a Gymnasium env and write a Minari dataset")
    p.add_argument(
        "--recipe",
        default=None,
        metavar="NAME",
        help="make D4RL-style datasets (trains a PPO behaviour policy; needs the sb3 extra), e.g. "
        "hopper-medium, hopper-medium-quick, hopper-quick, all-quick, pointmaze-medium (goal-"
        "conditioned, as D4RL/pointmaze; needs gymnasium-robotics); `list` shows them all; "
        "budget and sizes: collect.recipe.* keys",
    )
    _add_config_args(p)

    p = add("train", _cmd_train, "train a Trajectory Transformer into a run folder")
    p.add_argument("--run-dir", default=None, help="output folder (default runs/<name>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a stopped run")
    p.add_argument(
        "--ignore-checksums",
        action="store_true",
        help="with --resume: load checkpoints whose checksums do not match (files edited on purpose)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a different run in RUN_DIR")
    _add_trust_flag(p)
    _add_config_args(p)

    p = add("eval", _cmd_eval, "evaluate a trained run with the planner in vectorized envs")
    p.add_argument("run_dir")
    p.add_argument(
        "--out",
        default=None,
        help="where to write eval JSON (default RUN_DIR/eval); a folder inside the run names the "
        "evaluation in TensorBoard and the report, one outside it leaves the run untouched",
    )
    p.add_argument(
        "--agent",
        choices=["planner", "random", "behaviour"],
        default="planner",
        help="planner (the trained model), random, or behaviour (the policy that made the "
        "dataset); written to eval/eval.json or eval/eval_<agent>.json",
    )
    p.add_argument(
        "--checkpoint",
        type=int,
        default=None,
        metavar="STEP",
        help="evaluate the checkpoint saved at this optimizer step instead of the final weights "
        "(use --out to keep its results apart)",
    )
    _add_trust_args(p)
    p.add_argument(
        "overrides", nargs="*", help="plan.* / eval.* / data.ref_min_score / data.ref_max_score"
    )

    p = add(
        "bench",
        _cmd_bench,
        "speed, quality, planning-sweep and value-fit benchmarks (BENCHMARKS.md)",
    )
    p.add_argument(
        "what",
        choices=["data", "train", "plan", "gpu", "quality", "sweep", "valuefit", "oracle"],
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for smoke tests")
    p.add_argument("--device", default=None, help="plan, train: cpu | cuda | cuda:N | auto")
    p.add_argument(
        "overrides",
        nargs="*",
        help="the command's options and section.key=value overrides (`--name` or name=value; "
        "quality: suite=NAME dry_run report_only ...)",
    )
    _add_trust_flag(p)

    p = add("report", _cmd_report, "write a self-contained HTML report for a run")
    p.add_argument("run_dir")

    p = add("render", _cmd_render, "record evaluation episodes to MP4")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=1)
    _add_trust_args(p)
    p.add_argument("overrides", nargs="*")

    p = add("push", _cmd_push, "upload a run to the Hugging Face Hub as policy.tt + model card")
    p.add_argument("run_dir")
    p.add_argument("--repo", default=None, metavar="USER/NAME", help="the Hub repository")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--folder", default=None, help="write policy.tt and README.md here instead")

    p = add("quickstart", _cmd_quickstart, "collect, train, evaluate and report the default task")
    p.add_argument("--run-dir", default=None)
    _add_trust_flag(p)
    _add_config_args(p)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line as `main` reads it (exits with usage on a bad option, as argparse does)."""
    parser = build_parser()
    # key=value overrides may come before or after options; argparse leaves the later ones over.
    args, extra = parser.parse_known_args(argv)
    # `tt bench` reads its own options (`--dry-run`, `--work-dir w`) with config.parse_options
    stray = [] if args.command == "bench" else [item for item in extra if "=" not in item]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if getattr(args, "no_progress", False):
        args.overrides = [*args.overrides, *_NO_PROGRESS.get(args.command, [])]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from . import sources  # noqa: F401 - registers the producers' collect hints with the store

        with one_line_warnings(f"tt {args.command}"):
            return int(args.handler(args))
    except (TTError, ConfigError) as err:
        print(f"tt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print(f"tt {args.command}: interrupted; saved checkpoints are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
