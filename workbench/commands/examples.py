"""Two or three real command lines per verb, printed at the end of its ``--help``.

Kept in one place so a test can parse every one of them with the real parser
(tests/test_cli_docs.py): an example that names a flag the verb no longer has fails there.
"""

from __future__ import annotations

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "gui": [("open the window on a data set folder", "workbench gui demo"),
            ("a Pascal VOC devkit opens in place, in its own layout",
             "workbench gui VOCdevkit/VOC2007")],
    "demo-data": [
        ("60 synthetic images in YOLO format, split 80/20", "workbench demo-data demo --images 60"),
        ("another deterministic set (the demo model never saw seed 7)",
         "workbench demo-data shapes --images 200 --seed 7 --image-size 320"),
    ],
    "convert": [
        ("labels beside images -> Pascal VOC", "workbench convert demo --format voc --out demo-voc"),
        ("any layout -> darknet's obj.data/train.txt training layout",
         "workbench convert demo --format darknet --out demo-darknet"),
        ("a COCO JSON -> YOLO txt beside the images",
         "workbench convert instances.json --images images/ --format yolo --out coco-yolo"),
    ],
    "stats": [
        ("images, labels, boxes per class and every problem found", "workbench stats demo"),
        ("the same as one JSON object, decoding every image", "workbench stats demo --json --decode"),
    ],
    "split": [
        ("20 % validation, stratified by class", "workbench split demo --valid 0.2"),
        ("a test split too, with another seed", "workbench split demo --valid 0.2 --test 0.1 --seed 3"),
    ],
    "eval": [
        ("score a detect run against the labels",
         "workbench eval --gt demo --pred demo-detections"),
        ("COCO's mAP@[.5:.95] with PR-curve and confusion plots",
         "workbench eval --gt demo --pred demo-detections --metric coco --plots plots"),
    ],
    "detect": [
        ("the bundled demo model over a folder, YOLO txt out",
         "workbench detect demo --model demo --out demo-detections"),
        ("your own darknet files, COCO JSON out",
         "workbench detect images/ --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights "
         "--names coco.names --format coco --out found"),
        ("one frame in five of a video, written as an annotated video",
         "workbench detect clip.mp4 --model demo --every 5 --save-video clip-found.mp4"),
    ],
    "anchors": [
        ("9 anchors for a 416 px yolov3", "workbench anchors demo -n 9 --size 416"),
        ("6 anchors for yolov3-tiny from the training split",
         "workbench anchors demo -n 6 --size 416 --split train"),
    ],
    "export": [
        ("a model bundle to ONNX", "workbench export --model demo --out demo.onnx"),
        ("with a batch size chosen at run time",
         "workbench export --model runs/demo/bundle --out model.onnx --dynamic-batch"),
    ],
    "train": [
        ("fine-tune yolov3-tiny on a data set from the COCO weights (weights fetch first)",
         "workbench train demo --template yolov3-tiny --weights yolov3-tiny --out runs/demo"),
        ("the small demo template, a few epochs", "workbench train demo --template demo-tiny "
         "--epochs 4 --out runs/quick"),
        ("continue a stopped run", "workbench train demo --resume --out runs/demo"),
    ],
    "weights": [
        ("the COCO yolov3-tiny weights every tutorial starts from, into the user cache",
         "workbench weights fetch yolov3-tiny"),
        ("the first 15 layers of yolov3-tiny, as darknet partial",
         "workbench weights partial yolov3-tiny.cfg yolov3-tiny.weights 15 "
         "--out yolov3-tiny.conv.15"),
    ],
}


def format_examples(verb: str) -> str:
    """The examples block appended to ``workbench VERB --help`` (empty for an unknown verb)."""
    lines = []
    for what, command in EXAMPLES.get(verb, []):
        lines += [f"  # {what}", f"  {command}"]
    return "examples:\n" + "\n".join(lines) + "\n" if lines else ""
