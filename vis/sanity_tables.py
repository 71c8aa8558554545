"""The tables of ``npcnn sanity``: the study's numbers in Markdown (one
table per mode and metric, one for data randomisation, one for
faithfulness) and all of them in JSON."""
import json

from npcnn.atomic import atomic_write_text

METRIC_LABELS = {"spearman": "Spearman rank correlation", "spearman_abs": "Spearman rank correlation of |map|",
                 "ssim": "SSIM of |map|", "hog": "HOG-feature similarity (Pearson)"}


def _cell(mean, std):
    return f"{mean:.2f} ± {std:.2f}"


def _table(header, rows):
    header = [h.replace("|", "\\|") for h in header]      # |map| inside a cell would split it
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(results, labels):
    """The study as Markdown text."""
    n = len(results["images"])
    lines = [f"# Sanity checks and faithfulness: {results['arch']}", "",
             f"{results.get('images_note') or f'{n} test images balanced over the classes'}; targets: the "
             f"trained network's predicted class; seed {results['seed']}. Similarity to the trained network's "
             f"map: mean ± std over the images.", ""]
    for mode, found in results["model_randomization"].items():
        for metric, by_method in found["similarity"].items():
            lines += [f"## Model randomisation, {mode}: {METRIC_LABELS[metric]}", ""]
            rows = [[labels[m]] + [_cell(a, b) for a, b in zip(v["mean"], v["std"])] for m, v in by_method.items()]
            lines += _table(["method"] + found["steps"], rows) + [""]
    d = results.get("data_randomization")
    if d and "skipped" in d:
        lines += ["## Data randomisation", "", f"Skipped: {d['skipped']}.", ""]
    elif d:
        lines += ["## Data randomisation: the permuted-label network's maps against the trained network's", "",
                  d["note"], ""]
        metrics = list(d["similarity"])
        rows = [[labels[m]] + [_cell(**d["similarity"][k][m]) for k in metrics] for m in d["similarity"][metrics[0]]]
        lines += _table(["method"] + [METRIC_LABELS[k] for k in metrics], rows) + [""]
    f = results["faithfulness"]
    lines += ["## Faithfulness (probability of the predicted class)", "", f["note"], ""]
    rows = []
    for m in f["deletion"]:
        row = [labels.get(m, m), _cell(f["deletion"][m]["auc_mean"], f["deletion"][m]["auc_std"]),
               _cell(f["insertion"][m]["auc_mean"], f["insertion"][m]["auc_std"])]
        row += [_cell(f[k][m]["mean"], f[k][m]["std"]) if m in f[k] else "-" for k in ("road_morf", "road_lerf")]
        rows.append(row)
    lines += _table(["method", "deletion AUC (lower: better)", "insertion AUC (higher: better)",
                     "ROAD MoRF mean p (lower: better)", "ROAD LeRF mean p (higher: better)"], rows) + [""]
    return "\n".join(lines)


def write(results, labels, md_path, json_path):
    atomic_write_text(md_path, markdown(results, labels))
    atomic_write_text(json_path, json.dumps(results, indent=1) + "\n")
    return md_path, json_path
