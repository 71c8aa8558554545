"""The bench's sections beside the kernel table: what the torch side, the
data-set statistics and the explorer do per second on this machine.

Each section is ``(title, markdown, data)``. No targets on the CPU for the
attribution methods (honest numbers); the statistics report their scaling
efficiency over Dask workers; the explorer's section is added by ``npcnn
bench`` (it drives ``vis``, which the benchmarks themselves never import).
"""
from . import attribution_rates, stats_rates


def attribution_section(quick):
    parts = attribution_rates.bench_sections(quick)
    text = "\n\n".join(attribution_rates.markdown(rates, heading) for heading, rates in parts)
    return ("Attributions: images per second", text,
            {heading: [r.__dict__ for r in rates] for heading, rates in parts})


def stats_section(quick):
    n = 20000 if quick else 60000
    rates, name = stats_rates.measure(n)
    return ("Data-set statistics (npcnn.stats)", stats_rates.markdown(rates, name, n),
            {"images": n, "source": name, "images_per_s": {str(k): v for k, v in rates.items()}})


def all_sections(quick):
    return [attribution_section(quick), stats_section(quick)]
