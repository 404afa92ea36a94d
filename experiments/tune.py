"""Population search over any experiment's traced hyperparameters, inside one compiled program:
population-based training (--method pbt) or successive halving (--method sh).

    python -m experiments.tune --method pbt --metric high_quality --population 16 --ready 2000 \\
        --explore lr_g,lr_d,gp_weight -- --preset ring8 --data pacgan_ring --steps 20000 --snapshot-every 1000
    python -m experiments.tune --method sh --metric classifier_score --population 32 --r 1000 --eta 2 \\
        --task mnist -- --preset r2 --data-dir ../shared/data/mnist-test --snapshot-every 500

The population is --population seeds (from --seed); each starts from the experiment's hyperparameters with
the explored ones drawn from their search ranges (--init sample, the default) or as given (--init fixed).
PBT writes one run directory (the experiment's contract) plus population.jsonl (a "decision" row per ranking:
the values, copies, ties, whether it could rank anyone; a "copy" row per exploit and explore: step, member,
source, old and new hyperparameters, the metric values that decided it), summary.json's `population` (the
decisions' counts, `ranked` and a `note` when no decision could rank the members or the final values tie,
each member's schedule, the best member's lineage; `over_seeds` pools the whole population, by design and
said so) and figures/population.png; it resumes exactly with --resume after `--` (checkpoint with
--checkpoint-every). SH writes <out>/rung<k>/ per rung (each re-laid out on the devices, one compile
each), population.jsonl with each rung's decision, and summary.json. --bounds must lie inside each
hyperparameter's valid range (beta1's is [0, 1): beta1=0:0.999, not 0:1). Flags after `--` go to the
experiment.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
import sys

from gan_jax import cli, commands, tasks
from gan_jax.core.config import HParams
from gan_jax.engine import devices
from gan_jax.engine.rundir import to_json
from gan_jax.search import population

TASK_OF_EXPERIMENT = {"toy_quadratic": "toy", "mnist_gan": "mnist"}  # the older --experiment names


def bounds_list(text: str) -> dict:
    """'lr_g=1e-5:1e-2,gp_weight=0:10' -> {'lr_g': (1e-5, 1e-2), 'gp_weight': (0.0, 10.0)}."""
    out = {}
    for item in filter(None, text.split(",")):
        try:
            name, rng = item.split("=")
            low, high = (float(v) for v in rng.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bounds are name=low:high, comma-separated; got {item!r}") from None
        out[name.strip()] = (low, high)
    return out


def parse(argv):
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = cli.OneLineParser(prog="python -m experiments.tune", description=__doc__.split("\n")[0],
                               epilog=__doc__.split("\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--method", choices=["pbt", "sh"], default="pbt", help="population-based training or successive halving")
    add("--task", default=None, help="the task to search: a built-in task's name or module:attribute (default: toy)")
    add("--experiment", choices=sorted(TASK_OF_EXPERIMENT), default=None,
        help="the older name of --task: toy_quadratic (toy) or mnist_gan (mnist)")
    add("--metric", required=True, help="an evaluation metric to rank members by (e.g. high_quality)")
    add("--mode", choices=["max", "min"], default=None, help="maximize or minimize it (default: the metric's known way)")
    add("--population", type=cli.positive_int, default=16, help="members (seeds --seed .. --seed + N - 1)")
    add("--seed", type=cli.non_negative_int, default=0, help="first seed")
    add("--init", choices=["sample", "fixed"], default="sample",
        help="explored hyperparameters drawn from their search ranges, or the experiment's for every member")
    add("--explore", default="lr_g,lr_d", help="traced hyperparameters searched, comma-separated")
    add("--bounds", type=bounds_list, default={}, help="search ranges name=low:high, comma-separated (default: "
        + ", ".join(f"{k} {v[0]:g}:{v[1]:g}" for k, v in population.SEARCH.items()) + ")")
    add("--ready", type=cli.positive_int, default=None, help="pbt: steps between exploit/explore rounds "
        "(a multiple of the experiment's --snapshot-every; default: that)")
    add("--truncation", type=float, default=0.25, help="pbt: the worst fraction copies the best fraction")
    add("--resample", type=float, default=0.25, help="pbt: probability of a fresh draw instead of x0.8 / x1.25")
    add("--decision-seed", type=cli.non_negative_int, default=0, help="pbt: seed of the decisions' random stream")
    add("--r", type=cli.positive_int, default=1000, help="sh: steps of the first rung")
    add("--eta", type=cli.positive_int, default=2, help="sh: keep the best 1/eta at each rung")
    add("--out", type=pathlib.Path, default=None, help="output directory (default: runs/tune-<method>-<time>)")
    args = parser.parse_args(own)
    args.explore = tuple(filter(None, args.explore.split(",")))
    args.task = args.task or TASK_OF_EXPERIMENT.get(args.experiment, "toy")
    if "--out" in rest or "--seeds" in rest or "--seed" in rest:
        parser.error("give --out, --population and --seed before `--`, to tune")
    args.out = args.out or pathlib.Path("runs") / f"tune-{args.method}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return parser, args, rest


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    parser, args, rest = parse(argv)
    with cli.exit_on_error(parser):
        task = tasks.get(args.task)
    declared = [m.name for m in task.metrics]
    if declared and args.metric not in declared and args.mode is None:
        parser.error(f"--metric: {args.task} declares no metric {args.metric!r}; its metrics are {declared}")
    exp = commands.parse(rest + ["--seeds", "1", "--out", str(args.out)], "tune", task)
    seeds = range(args.seed, args.seed + args.population)
    with cli.exit_on_error(parser, flags_of=exp.parser):
        declared = {m.name: m.mode for m in task.metrics}  # the task's own metrics first
        options = population.PBTOptions(args.metric, args.ready or exp.options.snapshot_every,
                                        args.mode or declared.get(args.metric),
                                        args.truncation, args.explore, resample=args.resample, bounds=args.bounds,
                                        seed=args.decision_seed)
        options.check(exp.options.snapshot_every)
        members = population.initial_population(seeds, exp.hparams, args.explore, args.bounds,
                                                args.init == "sample", args.seed)
        if args.method == "pbt":
            run_pbt(exp, members, options)
        else:
            run_sh(exp, members, args)


def run_pbt(exp, members, options: population.PBTOptions) -> None:
    primary_log = exp.out / "population.jsonl"
    controller = population.PBT(options, members, primary_log)
    exp.out.mkdir(parents=True, exist_ok=True)
    result = commands.run(exp, members, controller=controller)
    if result.run.primary:
        result.summary.update(population.pooled_statistics(result.summary))  # pooled by design, and said so
        result.summary["population"] = population.pbt_summary(controller, result)
        result.run.write_json("summary.json", result.summary)
        best = result.summary["population"]["best_member"]
        population.plot_pbt(controller, best, result.summary["steps"], result.run.figures / "population.png")
        print("\n".join(exp.task.summary_lines(result)))
        print(population.pbt_line(result.summary["population"], result.summary["members"]))
    cli.exit_if_preempted(result, "experiments.tune", sys.argv[1:])


def run_sh(exp, members, args) -> None:
    def run_rung(rung, rung_members, end, state):
        rung_exp = dataclasses.replace(exp, out=exp.out / f"rung{rung}",
                                       options=dataclasses.replace(exp.options, steps=end))
        return commands.run(rung_exp, rung_members, initial_state=state)

    results, decisions = population.successive_halving(run_rung, members, args.r, args.eta, args.metric, args.mode,
                                                       exp.out / "population.jsonl")
    winner = decisions[-1]
    summary = {"method": "sh", "r": args.r, "eta": args.eta, "metric": args.metric, "rungs": decisions,
               "compile_s_per_rung": [r.summary["compile_s"] for r in results],
               "best": {"seed": winner["kept_seeds"][0], "hparams": winner["kept_hparams"][0],
                        "value": winner["values"][winner["kept"][0]]}}
    (exp.out / "summary.json").write_text(json.dumps(to_json(summary), indent=2) + "\n")
    for d, r in zip(decisions, results):
        print(f"rung {d['rung']}: {d['members']} members to step {d['step']} (compile {r.summary['compile_s']:.1f} s); "
              f"kept seeds {d['kept_seeds']}")
    print(f"best: seed {summary['best']['seed']}, {args.metric} {summary['best']['value']:.4g}, " + ", ".join(
        f"{k} {summary['best']['hparams'][k]:.4g}" for k in HParams.specs()))


if __name__ == "__main__":
    main()
