"""The three ways of dealing images into train and valid, all in ``workbench.data.splits``.

They stay three algorithms because each one's choice is on disk already (darknet exports,
trained runs and their validation scores): the images each one picks are pinned here, and
the old entry points (``data.darknet_layout.split_records``, ``train.data.split_records``)
must pick the very same ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from workbench.data import darknet_layout
from workbench.data.splits import make_split, random_split, training_split
from workbench.labels.dataset import Box, Dataset, ImageRecord
from workbench.train import data as train_data


def records(n: int = 23, seed: int = 0) -> list[ImageRecord]:
    """``n`` labeled images of three classes; every 7th one has a problem (training skips
    it)."""
    rng = random.Random(seed)
    return [ImageRecord(Path(f"/d/img_{i:03d}.jpg"), 64, 64,
                        [Box(0, 0, 10, 10, rng.randrange(3))], labeled=True,
                        problems=[] if i % 7 else ["damaged"])
            for i in range(n)]


def numbers(chosen: list[ImageRecord]) -> list[str]:
    return [r.path.stem.removeprefix("img_") for r in chosen]


# the valid images random_split picked before it moved out of darknet_layout
RANDOM_VALID = {
    (0, 0.2): ["010", "011", "014", "020", "021"],
    (0, 0.5): ["000", "002", "003", "004", "006", "010", "011", "014", "018", "019", "020",
               "021"],
    (1, 0.25): ["005", "009", "016", "019", "020", "022"],
    (5, 0.2): ["009", "013", "018", "020", "021"],
    (42, 0.5): ["001", "002", "005", "006", "009", "012", "013", "014", "015", "016", "017",
                "022"],
}

# the valid images (and train size) training's split picked before it moved out of train.data
TRAINING_VALID = {
    0.0: ([], 19),
    0.1: (["011"], 18),
    0.2: (["005", "011", "017"], 16),
    0.25: (["004", "009", "013", "018"], 15),
    0.34: (["003", "006", "010", "013", "017", "020"], 13),
    0.5: (["002", "004", "006", "009", "011", "013", "016", "018", "020"], 10),
}


@pytest.mark.parametrize(("seed", "fraction"), list(RANDOM_VALID))
def test_random_split_picks_the_pinned_images(seed, fraction):
    all_records = records()
    train, valid = random_split(all_records, fraction, seed)
    assert numbers(valid) == RANDOM_VALID[seed, fraction]
    assert len(train) + len(valid) == len(all_records)
    old_train, old_valid = darknet_layout.split_records(list(reversed(all_records)),
                                                        fraction, seed)
    assert (old_train, old_valid) == (train, valid)


@pytest.mark.parametrize("fraction", list(TRAINING_VALID))
def test_training_split_picks_the_pinned_images(fraction):
    dataset = Dataset(Path("/d"), images=records())
    train, valid = training_split(dataset, fraction)
    assert (numbers(valid), len(train)) == TRAINING_VALID[fraction]
    assert train_data.split_records(dataset, fraction) == (train, valid)


def test_training_split_takes_the_datasets_own_split():
    all_records = records()
    dataset = Dataset(Path("/d"), images=all_records,
                      split={"train": all_records[:10], "valid": all_records[10:]})
    train, valid = training_split(dataset, 0.5)
    assert train == [r for r in all_records[:10] if not r.problems]
    assert valid == [r for r in all_records[10:] if not r.problems]


def test_the_three_splitters_differ_which_is_why_there_are_three():
    all_records = records()
    stratified = numbers(make_split(all_records, 0.25, seed=5)["valid"])
    assert stratified != numbers(random_split(all_records, 0.25, 5)[1])
