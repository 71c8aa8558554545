"""An index of a folder of figures, as Markdown and as HTML that opens from
disk (relative links, no server, no scripts)."""
import html
from pathlib import Path

from npcnn.atomic import atomic_path

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
figure{display:inline-block;margin:0.6em;vertical-align:top;max-width:100%}
figure img{max-width:100%;max-height:520px;border:1px solid #ddd}
figcaption{font-size:0.85em;color:#444;max-width:520px}
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}"""


def _write(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def write_index(folder, heading, sections, facts=(), name="index", links=()):
    """Write ``name.md`` and ``name.html`` in ``folder``.

    sections: ``[(section title, [(relative file, caption), ...], extra)]``
    where ``extra`` is None or preformatted text (a table) shown under the
    section. facts: ``[(label, value)]`` listed under the heading; links:
    ``[(label, relative file, description)]``, pages beside this one.
    Returns the two paths.
    """
    folder = Path(folder)
    md = [f"# {heading}", ""]
    md += [f"- **{k}**: {v}" for k, v in facts] + [""]
    md += [f"- [{label}]({file}): {text}" for label, file, text in links] + ([""] if links else [])
    body = [f"<h1>{html.escape(heading)}</h1>"]
    if facts:
        body.append("<ul>" + "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
                                     for k, v in facts) + "</ul>")
    if links:
        body.append("<ul>" + "".join(f'<li><a href="{html.escape(str(file))}">{html.escape(label)}</a>: '
                                     f"{html.escape(text)}</li>" for label, file, text in links) + "</ul>")
    for title, figures, extra in sections:
        md += [f"## {title}", ""]
        body.append(f"<h2>{html.escape(title)}</h2>")
        if extra:
            md += ["```", extra.rstrip(), "```", ""]
            body.append(f"<pre>{html.escape(extra.rstrip())}</pre>")
        for file, caption in figures:
            file = str(file)
            md += [f"![{caption}]({file})", "", f"*{caption}*", ""]
            body.append(f'<figure><a href="{html.escape(file)}"><img src="{html.escape(file)}" '
                        f'alt="{html.escape(caption)}" loading="lazy"></a>'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    page = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(heading)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    return _write(folder / f"{name}.md", "\n".join(md) + "\n"), _write(folder / f"{name}.html", page)
