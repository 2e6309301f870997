#!/usr/bin/python3
"""Recall–QPS plots from bloch_ann's CSV: one PNG per dataset in the file.

    /usr/bin/python3 bench/plot_ann.py docs/ann/debian-QC128-HNSW32.csv docs/ann/

Four panels: recall@10 against each system's own exact top-10 and against the raw-cosine
top-10 (columns), queries per second with 1 thread and with all threads (rows, log scale).
Each system is one line through its sweep; the exact scan is one point.
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def main(csv_path: str, out_dir: str) -> None:
    rows = list(csv.DictReader(open(csv_path, newline="")))
    by_dataset = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_dataset[r["dataset"]][r["system"]].append(r)
    for dataset, systems in by_dataset.items():
        threads = next(iter(systems.values()))[0]["threads_all"]
        fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharey="row")
        panels = [
            ("recall_own", "qps_1", "recall@10 vs own exact", "QPS, 1 thread"),
            ("recall_raw", "qps_1", "recall@10 vs raw cosine", "QPS, 1 thread"),
            ("recall_own", "qps_all", "recall@10 vs own exact", f"QPS, {threads} threads"),
            ("recall_raw", "qps_all", "recall@10 vs raw cosine", f"QPS, {threads} threads"),
        ]
        for ax, (xcol, ycol, xlabel, ylabel) in zip(axes.flat, panels):
            for name, points in systems.items():
                points = sorted(points, key=lambda p: int(p["value"]))  # sweep order
                ax.plot(
                    [float(p[xcol]) for p in points],
                    [float(p[ycol]) for p in points],
                    marker="o",
                    markersize=4,
                    linestyle="-" if len(points) > 1 else "none",
                    label=name,
                )
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        axes.flat[0].legend(fontsize=8)
        fig.suptitle(f"{dataset}: recall@10 vs queries per second (k = 10)")
        fig.tight_layout()
        out = Path(out_dir) / f"{Path(csv_path).stem}.png"
        if len(by_dataset) > 1:
            out = Path(out_dir) / f"{dataset}-{Path(csv_path).stem}.png"
        fig.savefig(out, dpi=110)
        print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_ann.py RESULTS.csv OUT_DIR")
    main(sys.argv[1], sys.argv[2])
