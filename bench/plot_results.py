"""Plot bench/results.json (pytest-benchmark's JSON) into docs/performance.png.

    python bench/plot_results.py [RESULTS_JSON] [OUT_PNG]

Left: one allocation cycle against the number of connectors, hubgate and the
pure-Python reference, with the 100 ms and 1 s cycle budgets. Right: for every
group with a peer (or a rejected alternative), how many times faster hubgate's
median is than the other's; orange where hubgate is slower.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "bench" / "results.json"
DEFAULT_OUT = ROOT / "docs" / "performance.png"


def medians(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median seconds per group and `impl`."""
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in results["benchmarks"]:
        table[bench["group"]][bench["params"]["impl"]] = bench["stats"]["median"]
    return table


def scaling(results: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """(connectors, median seconds) per `impl`, from the benchmarks sized in connectors."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for bench in results["benchmarks"]:
        params = bench["params"]
        if "connectors" in params:
            series[params["impl"]].append((params["connectors"], bench["stats"]["median"]))
    return {impl: sorted(points) for impl, points in series.items()}


def speedups(results: dict[str, Any]) -> list[tuple[str, float]]:
    """(group vs peer, peer median / hubgate median) for every group with a peer."""
    rows = []
    for group, by_impl in sorted(medians(results).items()):
        ours = by_impl.get("hubgate")
        for impl, median in sorted(by_impl.items()):
            if impl != "hubgate" and ours:
                rows.append((f"{group}\nvs {impl}", median / ours))
    return rows


def plot(results: dict[str, Any], out: Path) -> None:
    figure = Figure(figsize=(14, 7))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    for impl, points in scaling(results).items():
        sizes, seconds = zip(*points, strict=True)
        left.plot(sizes, [s * 1e3 for s in seconds], marker="o", label=impl)
    for budget_ms, name in ((100, "100 ms cycle"), (1000, "1 s cycle")):
        left.axhline(budget_ms, color="grey", linestyle="--", linewidth=1)
        left.text(0.02, budget_ms, name, transform=left.get_yaxis_transform(), va="bottom")
    left.set(
        xscale="log",
        yscale="log",
        xlabel="connectors",
        ylabel="one allocation cycle, median (ms)",
        title="Allocation cost against site size",
    )
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    rows = speedups(results)
    if rows:
        labels, ratios = zip(*rows, strict=True)
        colours = ["tab:blue" if ratio >= 1 else "tab:orange" for ratio in ratios]
        right.barh(range(len(rows)), ratios, color=colours)
        right.set_yticks(range(len(rows)), labels, fontsize=7)
        right.invert_yaxis()
        right.axvline(1, color="black", linewidth=1)
        for y, ratio in enumerate(ratios):
            right.annotate(f"{ratio:.1f}x", (ratio, y), va="center", fontsize=7)
    right.set(
        xscale="log",
        xlabel="other median / hubgate median (>1: hubgate faster; orange: slower)",
        title="hubgate against its peers, same run",
    )
    right.grid(True, axis="x", which="both", alpha=0.3)
    machine = results.get("machine_info", {})
    figure.suptitle(
        f"hubgate benchmarks ({machine.get('cpu', {}).get('brand_raw', 'unknown CPU')}, "
        f"{results.get('datetime', '')[:10]})"
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)


def main(argv: Sequence[str]) -> None:
    results_path = Path(argv[0]) if argv else DEFAULT_RESULTS
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    plot(json.loads(results_path.read_text()), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
