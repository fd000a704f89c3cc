"""Run every benchmark under bench/ and write bench/results.json.

Each benchmark module has ``run(quick: bool) -> list[dict]``: one entry per figure,
each with the baseline measured in the same run and the ratio against it.

    python bench/run.py [--quick] [--only NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def benchmarks() -> list[Path]:
    return sorted(
        p for p in BENCH.glob("*.py") if p.name != "run.py" and not p.name.startswith("_")
    )


def load(path: Path):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the modules share bench/_harness.py
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--only", help="run only the benchmark of this file name (no .py)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    figures = []
    started = time.perf_counter()
    for path in benchmarks():
        if args.only and path.stem != args.only:
            continue
        print(f"== {path.stem}", flush=True)
        began = time.perf_counter()
        figures.extend(load(path).run(quick=args.quick))
        print(f"== {path.stem}: {time.perf_counter() - began:.0f} s", flush=True)
    summary = {
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "seconds": round(time.perf_counter() - started, 1),
        "figures": figures,
    }
    (BENCH / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    print(
        f"{'figure':<36}{'database':<12}{'size':>9}{'value':>14}{'baseline':>14}  {'unit':<12}"
        f"{'ratio':>7}"
    )
    for f in figures:
        print(
            f"{f['name']:<36}{f.get('database', ''):<12}{f['size']:>9}{f['value']:>14}"
            f"{f['baseline']:>14}  {f['unit']:<12}{f['ratio']:>7}"
        )
    print(f"\nwritten to {BENCH / 'results.json'} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
