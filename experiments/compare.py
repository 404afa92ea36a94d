"""Put runs side by side on one metric: per run and per setting, the final mean +- 95% CI over seeds and n,
each one's difference from the best with Welch's t-test (resolved or not), and the metric over steps.

    python -m experiments.compare runs/r2 runs/r2_pbt --metric frechet_distance
    python -m experiments.compare runs/sweep/all --metric high_quality --out runs/compare-lr

Writes <out>/compare.md, compare.json and <metric>.png (default --out: runs/compare-<metric>).
"""
import json
import pathlib
import sys

from gan_jax import cli
from gan_jax.engine.rundir import to_json
from gan_jax.reporting import compare


def parse(argv):
    parser = cli.OneLineParser(prog="python -m experiments.compare", description=__doc__.split("\n")[0],
                               formatter_class=cli.DefaultsFormatter)
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="run directories")
    parser.add_argument("--metric", required=True, help="an evaluation metric the runs share (without eval_)")
    parser.add_argument("--mode", choices=["max", "min"], default=None,
                        help="higher or lower is better (default: as the runs recorded it, or the metric's declared way)")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="where to write (default: runs/compare-<metric>)")
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse(sys.argv[1:] if argv is None else argv)
    with cli.exit_on_error(parser):
        groups = [g for run in args.runs for g in compare.run_groups(run, args.metric)]
        mode = compare.direction(args.runs, args.metric, args.mode)
    rows = compare.compare(groups, mode)
    out = args.out or pathlib.Path("runs") / f"compare-{args.metric}"
    out.mkdir(parents=True, exist_ok=True)
    text = compare.markdown(rows, args.metric, mode) + "".join(f"\n{note}\n" for note in compare.cautions(groups))
    (out / "compare.md").write_text(text)
    (out / "compare.json").write_text(json.dumps(to_json({"metric": args.metric, "mode": mode, "rows": rows}),
                                                 indent=2) + "\n")
    figure = compare.figure(groups, args.metric, out / f"{args.metric}.png")
    print(text + f"\nwritten: {out / 'compare.md'}, {out / 'compare.json'}, {figure}")


if __name__ == "__main__":
    main()
