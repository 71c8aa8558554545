"""The bench's sections beside the kernels run and report what they measure
(never a time assertion)."""
from benchmarks import stats_rates
from benchmarks.run import sections_of_the_bench
from vis.bench_cmd import explorer_section


def test_statistics_rates_in_this_process_and_on_a_worker():
    rates, name = stats_rates.measure(n=600, shard_size=200, workers=(1,))
    assert set(rates) == {"process", 1} and all(v > 0 for v in rates.values())
    table = stats_rates.markdown(rates, name, 600)
    assert "| this process |" in table and "| Dask, 1 worker |" in table and "| 1.00 |" in table


def test_the_explorer_section_reports_its_percentiles():
    title, text, times = explorer_section(quick=True)
    assert title.startswith("Explorer") and "target <= 50 ms" in text
    assert set(times) >= {"predict server", "unit server"} and times["predict server"]["p95"] > 0


def test_the_bench_has_the_attribution_and_statistics_sections():
    assert [f.__name__ for f in sections_of_the_bench()] == ["attribution_section", "stats_section"]
