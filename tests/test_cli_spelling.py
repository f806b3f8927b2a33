"""One spelling per idea across the verbs (issue 23, item 6): --format is what a verb writes,
--from what it reads, --valid the validation share, fp32/bf16/fp16 the precision, --size the
network input (demo-data's image side is --image-size). The old spellings still work but
--help does not show them; docs/cli.md is generated from the parsers and cannot drift."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]

# (old command line, the same in today's spelling)
RENAMED = [
    ("convert SRC --to voc --out OUT", "convert SRC --format voc --out OUT"),
    ("convert SRC --to darknet --out OUT --valid-fraction 0.3",
     "convert SRC --format darknet --out OUT --valid 0.3"),
    ("demo-data OUT --size 64 --valid-fraction 0.5", "demo-data OUT --image-size 64 --valid 0.5"),
    ("export --model demo --to onnx --out m.onnx", "export --model demo --format onnx --out m.onnx"),
    ("stats DIR --format voc", "stats DIR --from voc"),
    ("anchors DIR --format voc", "anchors DIR --from voc"),
    ("detect SRC --model demo --precision float32", "detect SRC --model demo --precision fp32"),
    ("detect SRC --model demo --precision bfloat16", "detect SRC --model demo --precision bf16"),
    ("train DIR --precision float32", "train DIR --precision fp32"),
    ("train DIR --precision bfloat16", "train DIR --precision bf16"),
    ("train DIR --precision float16", "train DIR --precision fp16"),
]
OLD_OPTIONS = {"convert": ["--to", "--valid-fraction"], "demo-data": ["--size", "--valid-fraction"],
               "export": ["--to"], "stats": ["--format"], "anchors": ["--format"]}


def _parse(line: str) -> dict:
    args = vars(build_parser().parse_args(line.split()))
    args.pop("func", None)
    return args


@pytest.mark.parametrize(("old", "new"), RENAMED)
def test_an_old_spelling_parses_to_the_same_arguments(old, new):
    assert _parse(old) == _parse(new)


def test_train_hands_the_trainer_its_own_precision_names():
    # workbench/train reads float32/bfloat16/float16: the short spelling is mapped to them
    assert _parse("train DIR --precision fp32")["precision"] == "float32"
    assert _parse("detect SRC --model demo --precision float16")["precision"] == "fp16"


@pytest.mark.parametrize("verb", sorted(OLD_OPTIONS))
def test_help_shows_only_todays_spelling(verb, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    text = capsys.readouterr().out
    options = text.split("options:", 1)[1].split("examples:", 1)[0]
    for old in OLD_OPTIONS[verb]:
        assert not re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", options), (verb, old)


def test_precision_is_spelled_alike_in_detect_and_train(capsys):
    for verb in ("detect", "train"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = capsys.readouterr().out
        # train lists the choices in its usage line; detect in the help text (its choices come
        # from the engine registry, read only when the help is shown)
        assert re.search(r"--precision (\{auto,fp32,bf16,fp16|PRECISION\s+arithmetic of the "
                         r"engine: auto, fp32, bf16, fp16)", text), verb
        assert "float32" not in text.split("--precision", 1)[1].split("\n  --", 1)[0]


def test_every_verb_names_each_idea_one_way():
    """No verb offers a visible --to, --valid-fraction or demo-data --size any more."""
    parser = build_parser()
    verbs = next(a for a in parser._actions if hasattr(a, "choices") and a.choices).choices
    for verb, verb_parser in verbs.items():
        visible = {s for a in verb_parser._actions for s in a.option_strings}
        assert not visible & {"--to", "--valid-fraction", "--image_size"}, verb
        if verb in ("detect", "convert", "export"):
            assert "--format" in visible, verb
    assert "--size" not in {s for a in verbs["demo-data"]._actions for s in a.option_strings}


def test_an_error_names_the_option_by_its_new_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(tmp_path), "--to", "bogus", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2
    assert "argument --format: invalid choice: 'bogus'" in capsys.readouterr().err


def test_old_and_new_spellings_write_the_same_files(tmp_path):
    """Real runs: demo-data and convert give the same output under either spelling."""
    old, new = tmp_path / "old", tmp_path / "new"
    assert main(["demo-data", str(old), "--images", "5", "--size", "64",
                 "--valid-fraction", "0.4"]) == 0
    assert main(["demo-data", str(new), "--images", "5", "--image-size", "64",
                 "--valid", "0.4"]) == 0
    names = sorted(p.name for p in old.iterdir())
    assert names == sorted(p.name for p in new.iterdir())
    assert filecmp.cmpfiles(old, new, names, shallow=False)[0] == names
    assert main(["convert", str(old), "--to", "yolo", "--out", str(tmp_path / "c1")]) == 0
    assert main(["convert", str(new), "--format", "yolo", "--out", str(tmp_path / "c2")]) == 0
    labels = sorted(p.name for p in (tmp_path / "c1").glob("*.txt"))
    assert labels and filecmp.cmpfiles(tmp_path / "c1", tmp_path / "c2", labels,
                                       shallow=False)[0] == labels


def test_docs_cli_md_is_what_the_parsers_say_now():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_cli_docs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == make_cli_docs.render(), (
        "docs/cli.md is out of date with the parsers; regenerate it: "
        "python scripts/make_cli_docs.py")


def test_docs_cli_md_lists_every_verb_and_no_hidden_alias():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for verb in ("gui", "demo-data", "convert", "stats", "split", "eval", "detect", "anchors",
                 "export", "train", "weights partial", "weights fetch"):
        assert f"\n## workbench {verb}\n" in text, verb
    tables = "\n".join(line for line in text.splitlines() if line.startswith("| `--"))
    assert "`--to`" not in tables and "`--valid-fraction`" not in tables
    assert "`--image-size`" in tables and "`--from`" in tables


def test_the_check_mode_of_the_script_passes_in_a_child_process():
    proc = subprocess.run([sys.executable, "scripts/make_cli_docs.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
