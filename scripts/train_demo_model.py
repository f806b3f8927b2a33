"""Reproduce the bundled demo model (resources/models/demo) from `workbench demo-data` output.

    python3 scripts/train_demo_model.py            # data in /tmp, run in runs/demo, install
    python3 scripts/train_demo_model.py --no-install --epochs 5   # a quick look

Steps: `workbench demo-data DATA --images N --seed S`; `workbench train DATA --template
demo-tiny --size 192 ...` from scratch into RUN, then again from RUN's best weights into
RUN-finetune; then copy RUN-finetune/bundle/demo.{cfg,weights,names} into resources/models/demo. Everything is seeded; TensorFlow on CPU is not bit-exact across
machines, so a rerun gives a model of the same quality, not the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "models" / "demo"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/tmp/workbench-demo-data", help="dataset folder to write")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", default=str(ROOT / "runs" / "demo"), help="training run folder")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--finetune-epochs", type=int, default=60)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--zoom", type=float, default=0.25)
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted stages (the data folder is kept)")
    p.add_argument("--reuse-data", action="store_true", help="keep an existing --data folder")
    p.add_argument("--no-install", action="store_true", help="leave resources/ alone")
    args = p.parse_args()

    workbench = [sys.executable, "-m", "workbench"]
    if not (args.resume or args.reuse_data and (Path(args.data) / "classes.txt").is_file()):
        subprocess.run([*workbench, "demo-data", args.data, "--images", str(args.images),
                        "--seed", str(args.seed)], check=True)
    common = ["--template", "demo-tiny", "--size", "192", "--batch", str(args.batch),
              "--policy", "cosine", "--zoom", str(args.zoom),
              "--patience", "0", "--seed", str(args.seed), "--name", "demo"]
    # stage 1 from scratch; stage 2 restarts the cosine schedule from stage 1's best model
    # (a warm restart; stage 1 alone ends with the shapes found but their classes confused)
    first, second = Path(args.run), Path(f"{args.run}-finetune")
    stages = [(first, ["--epochs", str(args.epochs), "--lr", str(args.lr)]),
              (second, ["--epochs", str(args.finetune_epochs), "--lr", str(args.finetune_lr),
                        "--weights", str(first / "bundle" / "demo.weights")])]
    for out, extra in stages:
        cmd = [*workbench, "train", args.data, *common, *extra, "--out", str(out)]
        # a finished stage resumed just reports done
        resume = args.resume and (out / "config.json").is_file()
        subprocess.run(cmd + (["--resume"] if resume else []), check=True)
    if not args.no_install:
        DEMO.mkdir(parents=True, exist_ok=True)
        for ext in ("cfg", "weights", "names"):
            shutil.copyfile(second / "bundle" / f"demo.{ext}", DEMO / f"demo.{ext}")
        print(f"installed the demo model in {DEMO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
