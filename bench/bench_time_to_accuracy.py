"""Time to accuracy: validation mAP@0.5 and mAP@[.5:.95] against wall minutes of training,
for one or more runs side by side, as a table and a plot.

    python3 bench/bench_bccd.py BCCD --weights yolov3-tiny.weights --out bench/out/bccd-a
    python3 bench/bench_time_to_accuracy.py bench/out/bccd-a/run [OTHER_RUN ...] \\
        [--png bench/out/time_to_accuracy.png] [--budget 30]

Each RUN is a `workbench train` run folder; its metrics.csv holds every epoch's seconds
(training and validation) and the validation figures of the exported, averaged model (the
`workbench detect` + `workbench eval` figures on the validation split: BCCD's test split in
bench_bccd.py). The table gives, per run, the minutes at which each mAP level was first
reached, the best figures within --budget minutes, and the best overall; the PNG draws both
curves (matplotlib).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEVELS_50 = (0.80, 0.85, 0.88, 0.90)
LEVELS_50_95 = (0.45, 0.50, 0.53, 0.56)


def curve(run: Path) -> list[tuple[float, float, float]]:
    """(cumulative minutes, mAP@0.5, mAP@[.5:.95]) after each validated epoch of ``run``."""
    from workbench.train.protocol import read_metrics_csv

    rows = read_metrics_csv(run / "metrics.csv")
    if not rows:
        raise SystemExit(f"{run / 'metrics.csv'}: no epochs recorded (is it a run folder?)")
    out, minutes = [], 0.0
    for row in rows:
        minutes += (row["seconds"] or 0.0) / 60
        if row["val_map50"] is not None:
            out.append((minutes, row["val_map50"], row["val_map50_95"] or 0.0))
    return out


def first_reached(points, column: int, level: float) -> str:
    for p in points:
        if p[column] >= level:
            return f"{p[0]:.1f}"
    return "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (metrics.csv inside)")
    p.add_argument("--names", nargs="*", help="a label per run (default: the folder names)")
    p.add_argument("--budget", type=float, default=30.0, help="minutes (default 30)")
    p.add_argument("--png", type=Path, default=ROOT / "bench" / "out" / "time_to_accuracy.png")
    args = p.parse_args()
    names = args.names or [r.parent.name if r.name == "run" else r.name for r in args.runs]
    curves = [curve(r) for r in args.runs]

    head = ["run", "minutes", *(f"min to {lv:.2f}" for lv in LEVELS_50),
            *(f"min to {lv:.2f} (.5:.95)" for lv in LEVELS_50_95),
            f"best in {args.budget:g} min", "best overall"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, points in zip(names, curves, strict=True):
        within = [pt for pt in points if pt[0] <= args.budget] or points[:1]
        best_in = max(within, key=lambda pt: (pt[2], pt[1]))
        best = max(points, key=lambda pt: (pt[2], pt[1]))
        cells = [name, f"{points[-1][0]:.1f}",
                 *(first_reached(points, 1, lv) for lv in LEVELS_50),
                 *(first_reached(points, 2, lv) for lv in LEVELS_50_95),
                 f"{best_in[1]:.3f} / {best_in[2]:.3f}", f"{best[1]:.3f} / {best[2]:.3f}"]
        print("| " + " | ".join(cells) + " |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for name, points in zip(names, curves, strict=True):
        minutes = [pt[0] for pt in points]
        axes[0].plot(minutes, [pt[1] for pt in points], marker=".", label=name)
        axes[1].plot(minutes, [pt[2] for pt in points], marker=".", label=name)
    for ax, title, target in ((axes[0], "mAP@0.5", 0.90), (axes[1], "mAP@[.5:.95]", 0.56)):
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.axvline(args.budget, color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="wall minutes of training (validation included)", ylabel=title,
               title=f"validation {title}")
        ax.grid(alpha=0.3)
    axes[1].legend()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=100)
    print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
