"""Score a samples file with a task's metrics, beside their real-data ceiling and protocol: a run's
samples.npz (every member), the output of experiments.sample, or another library's samples.

    python -m experiments.evaluate runs/r2/samples.npz --task mnist --data-dir ../shared/data/mnist-test
    python -m experiments.evaluate torch_samples.npy --task mnist --data-dir ../shared/data/mnist-test --range unit
    python -m experiments.evaluate runs/r1/samples.npz --task toy --data quadratic --out r1_scores.json

Images may be uint8 pixels or floats in [0, 1], [-1, 1] or 0-255 ([N, 28, 28], [N, 784], ...): the range is
detected and said, or given with --range. Give the task's data flags as the run had them (--data-dir,
--data, ...): the metrics compare with the same real images. On a run's own samples.npz this reproduces the
run's final numbers (to float32 rounding).
"""
import json
import pathlib
import sys


from gan_jax import cli, commands, data as data_registry, presets, runs, tasks
from gan_jax.engine.rundir import to_json
from gan_jax.metrics import stats
from gan_jax.reporting import compare, plotting


def parse(argv):
    task = commands.task_from(argv, "evaluate")
    preset = presets.get(cli.preset_from(argv, list(task.presets), task.presets[0]))
    parser = cli.OneLineParser(prog="python -m experiments.evaluate", description=__doc__.split("\n\n")[0].replace("\n", " "),
                               formatter_class=cli.DefaultsFormatter)
    parser.add_argument("file", type=pathlib.Path, help="samples: .npz (a run's samples.npz, or one array) or .npy")
    parser.add_argument("--task", default=commands.DEFAULT_TASK,
                        help="the task whose metrics to use; its data flags follow (--task NAME --help lists them)")
    parser.add_argument("--preset", choices=task.presets, default=task.presets[0],
                        help="a preset of the task, for its data settings (the scores do not depend on its model)")
    parser.add_argument("--range", choices=sorted(runs.RANGES), default=None,
                        help="images' value range: uint8 (0-255), unit ([0, 1]), tanh ([-1, 1]); default: detected")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="also write the scores as JSON here")
    task.add_flags(parser, preset.config)
    cli.hide_flags(parser, "no_eval", "full")  # the tasks' training flags: nothing is trained here
    cli.static_defaults(parser, preset.config)  # the model's settings do not change a score
    return task, preset, parser, parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    task, preset, parser, args = parse(argv)
    with cli.exit_on_error(parser):
        data = task.load(args)
        cfg = task.configure(preset.config, args, data)
        scorer = task.scorer(cfg, data)
        if scorer is None:
            scored_by = f"; give --task {cfg.data}, the task that scores it" if cfg.data in tasks.names() else ""
            parser.error(f"--task {task.name} has no evaluation for {cfg.data} data{scored_by}")
        dim = data_registry.dimension(cfg.data) if cfg.data in data_registry.DATASETS else None
        run = runs.samples_run(args.file)  # a run's samples.npz: its config.json and summary.json
        origin = runs.samples_origin(args.file, run, task.name, cfg.data) if run else None
        samples, labels, said = runs.read_samples(args.file, cfg.image_shape, args.range, dim)
        print(said)
        if origin:
            print(origin)
        if scorer.note:  # e.g. features from a network with random weights: said, as a run says it
            print(scorer.note)
        scores = runs.score(scorer, samples, labels)
    by_setting = compare.scores_by_setting(*run, scores) if run else None  # a sweep's samples.npz: never pooled
    report = {"file": str(args.file), "task": task.name, "members": [{k: float(v[i]) for k, v in scores.items()}
                                                                     for i in range(len(samples))],
              "over_members": {} if by_setting else {k: stats.mean_ci95(v) for k, v in scores.items()},
              **({"by_setting": by_setting} if by_setting else {}),
              "real_reference": scorer.ceiling, "provenance": runs.with_sample_count(scorer.provenance, samples)}
    ceiling = scorer.ceiling or {}
    for name, values in scores.items():
        real = f"   (real data: {ceiling[name]:.4g})" if name in ceiling else ""
        pooled = f"   mean {stats.format_ci(report['over_members'][name])}" if len(values) > 1 and not by_setting else ""
        print(f"  {name:>17}: " + ", ".join(f"{v:.4g}" for v in values[:8]) + ("..." if len(values) > 8 else "")
              + pooled + real)
        for group in by_setting or []:
            print(f"  {'':>17}  {plotting.setting_label(group['setting'])}: mean "
                  f"{stats.format_ci(group['over_seeds'][name])} over members {group['members']}")
    if args.out:
        args.out.write_text(json.dumps(to_json(report), indent=2) + "\n")
        print(f"scores written to {args.out}")


if __name__ == "__main__":
    main()
