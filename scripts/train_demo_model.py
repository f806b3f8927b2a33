"""Reproduce the bundled demo model (resources/models/demo) from `workbench demo-data` output.

    python3 scripts/train_demo_model.py            # data in /tmp, run in runs/demo, install
    python3 scripts/train_demo_model.py --no-install --epochs 5   # a quick look

Steps: `workbench demo-data DATA --images N --seed S`, then `workbench train DATA --template
demo-tiny --size 192 ...`, then copy RUN/bundle/demo.{cfg,weights,names} into
resources/models/demo. Everything is seeded; TensorFlow on CPU is not bit-exact across
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
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--zoom", type=float, default=0.25)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--reuse-data", action="store_true", help="keep an existing --data folder")
    p.add_argument("--no-install", action="store_true", help="leave resources/ alone")
    args = p.parse_args()

    workbench = [sys.executable, "-m", "workbench"]
    if not (args.resume or args.reuse_data and (Path(args.data) / "classes.txt").is_file()):
        subprocess.run([*workbench, "demo-data", args.data, "--images", str(args.images),
                        "--seed", str(args.seed)], check=True)
    train = [*workbench, "train", args.data, "--template", "demo-tiny", "--size", "192",
             "--epochs", str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr),
             "--policy", "cosine", "--zoom", str(args.zoom), "--patience", "0",
             "--seed", str(args.seed), "--name", "demo", "--out", args.run]
    subprocess.run(train + (["--resume"] if args.resume else []), check=True)
    if not args.no_install:
        DEMO.mkdir(parents=True, exist_ok=True)
        for ext in ("cfg", "weights", "names"):
            shutil.copyfile(Path(args.run) / "bundle" / f"demo.{ext}", DEMO / f"demo.{ext}")
        print(f"installed the demo model in {DEMO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
