import json
import subprocess
import sys

from workbench.data.folder import open_dataset
from workbench.data.stats import dataset_stats
from workbench.data.synth import make_demo_dataset


def test_stats_count_labels_boxes_and_problems(tmp_path):
    root = make_demo_dataset(tmp_path / "d", images=10, seed=2, size=128)
    expected_boxes = sum(len(p.read_text().splitlines()) for p in root.glob("img_*.txt"))
    (root / "img_00003.txt").unlink()             # not labeled yet
    (root / "img_00004.txt").write_text("")        # labeled, nothing there
    (root / "img_00005.txt").write_text("7 0.5 0.5 0.1 0.1\n")  # bad class id
    stats = dataset_stats(open_dataset(root))
    assert stats.images == 10 and stats.unlabeled == 1 and stats.labeled == 9
    assert len(stats.problems) == 1 and "img_00005.txt:1" in stats.problems[0]
    assert stats.boxes == sum(stats.boxes_per_class.values())
    assert stats.boxes < expected_boxes
    assert list(stats.boxes_per_class) == ["circle", "square", "triangle", "star"]
    assert stats.box_size.width[0] <= stats.box_size.width[2] <= stats.box_size.width[4]


def test_stats_cli_json_and_bad_folder(tmp_path):
    root = make_demo_dataset(tmp_path / "d", images=3, seed=1, size=96)
    done = subprocess.run([sys.executable, "-m", "workbench", "stats", str(root), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["images"] == 3 and data["labeled"] == 3 and data["problems"] == []
    bad = subprocess.run([sys.executable, "-m", "workbench", "stats", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "nope" in bad.stderr and bad.stderr.count("\n") == 1
