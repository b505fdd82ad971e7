"""Rebuild resources/demo_*.csv.gz, the built-in demo task, from shared/data.

The seed's split: the first 400 training images labelled 7 or 8, and the first 600 test
images labelled 2, 7 or 8 (the 2s are the defects). Run once; the output is committed.
Usage: python scripts/make_demo_data.py [../shared/data]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    train = pd.read_csv(source / "mnist_train.csv.gz")
    test = pd.read_csv(source / "mnist_test.csv.gz")
    train = train[train["label"].isin([7, 8])].head(400)
    test = test[test["label"].isin([2, 7, 8])].head(600)
    for name, frame in (("train", train), ("test", test)):
        out = ROOT / "resources" / f"demo_{name}.csv.gz"
        frame.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
        print(out, frame.shape, frame["label"].value_counts().to_dict())


if __name__ == "__main__":
    main()
