"""What writing netCDF through memory costs: time and peak memory of ``write_dataset`` (serialized in memory, then
written with plain ``write`` calls, so a full disk is a clean error) against h5netcdf writing the file itself (what
it did before, which dies by signal 11 when the disk fills).

Each run is a fresh process (peak RSS is per process), the two ways alternating, medians printed:

    python benchmarks/disk_writes.py --mib 64 256 --runs 3 [--write-docs]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from report import publish

ONE_RUN = """
import json, resource, sys, time
from pathlib import Path
import numpy as np, xarray as xr
from engine.data.io import _compression, write_dataset
way, mib, folder = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
n = 256
count = max(1, int(mib * 2**20 / (4 * n * n)))
values = np.random.default_rng(0).standard_normal((count, n, n), dtype=np.float32)  # no float64 peak first
ds = xr.Dataset({"field": (("sample", "y", "x"), values)})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
target = folder / f"{way}.nc"
if way == "memory":
    write_dataset(ds, target)
else:
    ds.to_netcdf(target, engine="h5netcdf", encoding=_compression(ds))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "extra_mib": (peak - before) / 1024, "file_mib": target.stat().st_size / 2**20}))
"""


def one(way: str, mib: float, folder: str) -> dict:
    out = subprocess.run([sys.executable, "-c", ONE_RUN, way, str(mib), folder], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, nargs="+", default=[64.0, 256.0], help="dataset sizes in MiB")
    parser.add_argument("--runs", type=int, default=3, help="runs of each way (alternating)")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.runs < 1 or min(args.mib) <= 0:
        parser.error("--runs must be at least 1 and every --mib positive")
    rows = ["| dataset | way | write s (median) | peak memory over the dataset, MiB | file MiB |",
            "|---|---|---|---|---|"]
    print("\n".join(rows), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for mib in args.mib:
            runs = {"direct": [], "memory": []}
            for _ in range(args.runs):
                for way in runs:
                    runs[way].append(one(way, mib, folder))
            for way, results in runs.items():
                seconds = statistics.median(r["seconds"] for r in results)
                extra = statistics.median(r["extra_mib"] for r in results)
                label = "h5netcdf to the file (before)" if way == "direct" else "to memory, then write (now)"
                rows.append(f"| {mib:g} MiB | {label} | {seconds:.3f} | {extra:.0f} | {results[0]['file_mib']:.0f} |")
                print(rows[-1], flush=True)
            ratio = (statistics.median(r["seconds"] for r in runs["memory"])
                     / statistics.median(r["seconds"] for r in runs["direct"]))
            rows.append(f"| {mib:g} MiB | time ratio now / before | {ratio:.2f} | | |")
            print(rows[-1], flush=True)
    if args.write_docs:
        publish("disk_writes", "python benchmarks/disk_writes.py " + " ".join(argv or sys.argv[1:]), "\n".join(rows))


if __name__ == "__main__":
    main()
