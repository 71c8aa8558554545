"""``python -m benchmarks.explore_latency``: the explorer's latency and a
burst of local requests (the measuring code is ``vis/explore_latency.py``,
beside the server it drives; nothing in vis imports this script)."""
from vis.explore_latency import main

if __name__ == "__main__":
    raise SystemExit(main())
