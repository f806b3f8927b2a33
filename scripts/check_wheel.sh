#!/usr/bin/env bash
# The wheel as users install it: build it, install it into a fresh venv with no source tree on
# the path, and run the README's first command and a one-epoch training run against it.
# Catches what an editable install hides (files outside the package missing from the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip wheel . --quiet --no-deps --no-build-isolation --disable-pip-version-check -w "$work/dist"
wheel="$(ls "$work"/dist/*.whl)"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[train]"
cd "$work"  # nothing of the clone on the path from here on
export PATH="$work/venv/bin:$PATH"
python -c 'import workbench, sys; from workbench.bundled import bundled_folder as b; \
p = [str(b(n)) for n in ("resources", "darknet_cfg")]; print("installed:", workbench.__file__, *p); \
sys.exit(any("/site-packages/" not in x for x in [workbench.__file__, *p]))'
workbench demo-data demo --images 60 --seed 7
workbench detect demo --model demo --out demo-detections
workbench eval --gt demo --pred demo-detections
workbench train demo --template yolov3-tiny --epochs 1 --out run
ls run/bundle/*.weights  # the exported bundle is there
echo "wheel check: passed"
