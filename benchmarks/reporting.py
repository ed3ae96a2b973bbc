"""Presenting evaluation results: rich tables for the terminal, a Markdown report, a PNG chart.

Every function takes the report dictionaries built by ``evaluation.build_report`` (``{"modes",
"questions"}``) and ``beir.evaluate_beir`` (``{"modes", "queries", ...}``) and only formats them.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from assistant.errors import SummitError
from assistant.evaluation import counts, misses

# (label, path in a mode summary); the order of the tables and the report.
METRICS: list[tuple[str, str]] = [
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("hit@5", "hit@5"),
    ("MRR@10", "mrr@10"),
    ("nDCG@10", "ndcg@10"),
    ("answer accuracy", "answer_accuracy"),
    ("abstention precision", "abstention.precision"),
    ("abstention recall", "abstention.recall"),
    ("false abstentions", "abstention.false_abstentions"),
    ("false abstention rate", "abstention.false_abstention_rate"),
    ("near-miss abstention recall", "abstention.near_miss_recall"),
    ("off-topic abstention recall", "abstention.off_topic_recall"),
    ("follow-up accuracy", "follow_up_accuracy"),
    ("conflicts: newest answer", "conflicts.newest_answer"),
    ("conflicts: both cited", "conflicts.both_cited"),
    ("latency p50 (ms)", "latency_ms.p50"),
    ("latency p95 (ms)", "latency_ms.p95"),
]
# What the chart compares (all in [0, 1]).
PLOT_METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "answer_accuracy", "abstention.recall", "abstention.precision"]
SHORT_LABELS = {"answer_accuracy": "answer acc.", "abstention.precision": "abstain prec.",
                "abstention.recall": "abstain recall", "abstention.false_abstentions": "false abstain",
                "abstention.false_abstention_rate": "false abst. rate", "abstention.near_miss_recall": "near-miss rec.",
                "abstention.off_topic_recall": "off-topic rec.", "follow_up_accuracy": "follow-ups",
                "conflicts.newest_answer": "conflict newest", "conflicts.both_cited": "conflict cited"}
BEIR_LABELS = [("nDCG@10", "ndcg@10"), ("recall@10", "recall@10"), ("MRR@10", "mrr@10")]

OUTCOME_LABELS = {
    "evidence_not_cited": "evidence not cited",
    "wrong_answer": "wrong answer",
    "false_abstention": "false abstention",
    "answered_unanswerable": "answered an unanswerable",
}


def lookup(summary: dict, path: str):
    value = summary
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def fmt(value, path: str = "") -> str:
    if value is None:
        return "—"
    if path.startswith("latency"):
        return f"{value:.1f}"
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    return f"{value:.3f}"


def short(text, limit: int = 140) -> str:
    if isinstance(text, (list, tuple)):  # evidence alternatives
        text = " | ".join(text)
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def describe_question(row: dict) -> str:
    if row.get("history"):
        return f"{row['question']}  (after: {' → '.join(row['history'])})"
    return row["question"]


def came_back(row: dict) -> str:
    if not row["found"]:
        return "(abstained)"
    got = f"{short(row['answer'], 100)}"
    rank = row.get("relevant_rank")
    if row.get("evidence"):
        got += f" — evidence at rank {rank}" if rank else " — evidence not in the citations"
    if row.get("top_passage") and not rank:
        got += f"; top passage: {short(row['top_passage'], 120)}"
    return got


def expected(row: dict) -> str:
    if not row["answerable"]:
        return "(abstain)"
    parts = []
    if row.get("expected"):
        parts.append(" | ".join(row["expected"]))
    if row.get("evidence"):
        parts.append(f"evidence: «{short(row['evidence'], 100)}»")
    return "; ".join(parts)


# ---- rich ----------------------------------------------------------------------------------------


def modes_table(report: dict, title: str | None = None) -> Table:
    """One row per metric, one column per mode."""
    modes = list(report["modes"])
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for m in modes:
        table.add_column(m, justify="right")
    for label, path in METRICS:
        table.add_row(label, *(fmt(lookup(report["modes"][m], path), path) for m in modes))
    return table


def language_table(report: dict) -> Table:
    """One row per metric, one column per (mode, language); short labels to fit 80 columns."""
    cols = [(m, lang) for m, s in report["modes"].items() for lang in s.get("by_language", {})]
    table = Table(title="by language", title_justify="left")
    table.add_column("metric", no_wrap=True)
    for m, lang in cols:
        table.add_column(f"{m[:3]} {lang}", justify="right", no_wrap=True)
    for label, path in METRICS:
        if path.startswith("latency"):
            continue
        table.add_row(SHORT_LABELS.get(path, label),
                      *(fmt(lookup(report["modes"][m]["by_language"][lang], path), path) for m, lang in cols))
    return table


def misses_view(rows: list[dict]):
    """The misses as a list (readable at any terminal width): what, question, got, expected."""
    from rich.console import Group
    from rich.text import Text

    missed = misses(rows)
    parts = [Text(f"misses ({len(missed)})", style="bold")]
    for r in missed:
        head = Text(f"{r['mode'] or ''} {r['id']} ", style="cyan")
        head.append(OUTCOME_LABELS.get(r["outcome"], r["outcome"]), style="yellow")
        parts.append(head)
        for label, value in (("Q", describe_question(r)), ("got", came_back(r)), ("expected", expected(r))):
            line = Text(f"  {label}: ", style="dim")
            line.append(value)
            parts.append(line)
    return Group(*parts)


def beir_table(beir: dict) -> Table:
    modes = list(beir["modes"])
    table = Table()
    table.add_column("metric")
    for m in modes:
        table.add_column(m, justify="right")
    for label, key in BEIR_LABELS:
        table.add_row(label, *(fmt(beir["modes"][m].get(key)) for m in modes))
    return table


def beir_header(beir: dict) -> str:
    return (f"BEIR {beir.get('dataset', '')}: {beir.get('queries')} judged queries, {beir.get('corpus')} documents "
            f"({beir.get('chunks')} chunks); document-level metrics")


def header_line(rows: list[dict], k: int | None = None) -> str:
    first_mode = rows[0]["mode"] if rows else None
    c = counts([r for r in rows if r["mode"] == first_mode])
    langs = ", ".join(f"{n} {lang}" for lang, n in c["by_language"].items())
    return (f"{c['questions']} questions ({c['answerable']} answerable, {c['unanswerable']} unanswerable, "
            f"{c['follow_ups']} follow-ups; {langs})" + (f", k={k}" if k else ""))


# ---- Markdown ------------------------------------------------------------------------------------


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]], align_right_from: int = 1) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" if i < align_right_from else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown_report(report: dict, *, title: str = "Summit Assistant evaluation", meta: dict | None = None) -> str:
    """The same content as the terminal: metric tables per mode, by language, misses, BEIR."""
    lines = [f"# {title}", ""]
    for key, value in (meta or {}).items():
        lines.append(f"- **{key}**: {value}")
    if meta:
        lines.append("")
    if "modes" in report:
        modes = list(report["modes"])
        lines += ["## Metrics", "", header_line(report["questions"]), ""]
        lines += _md_table(["metric", *modes], [[label, *(fmt(lookup(report["modes"][m], p), p) for m in modes)] for label, p in METRICS])
        cols = [(m, lang) for m in modes for lang in report["modes"][m].get("by_language", {})]
        if cols:
            lines += ["", "## By language", ""]
            lines += _md_table(
                ["metric", *(f"{m} {lang}" for m, lang in cols)],
                [[label, *(fmt(lookup(report["modes"][m]["by_language"][lang], p), p) for m, lang in cols)]
                 for label, p in METRICS if not p.startswith("latency")],
            )
        missed = misses(report["questions"])
        lines += ["", f"## Misses ({len(missed)})", ""]
        if missed:
            lines += _md_table(
                ["mode", "id", "what", "question", "came back", "expected"],
                [[r["mode"] or "", r["id"], OUTCOME_LABELS.get(r["outcome"], r["outcome"]), describe_question(r), came_back(r), expected(r)]
                 for r in missed],
                align_right_from=99,
            )
        else:
            lines.append("None.")
    if "beir" in report:
        beir = report["beir"]
        modes = list(beir["modes"])
        lines += ["", "## BEIR", "", beir_header(beir) + ".", ""]
        lines += _md_table(["metric", *modes], [[label, *(fmt(beir["modes"][m].get(key)) for m in modes)] for label, key in BEIR_LABELS])
    return "\n".join(lines) + "\n"


# ---- chart ---------------------------------------------------------------------------------------


PLOT_NEEDS = "--plot needs matplotlib, an optional dependency: pip install 'summit-assistant[eval]'"


def require_matplotlib() -> None:
    """Fail early (a one-line SummitError naming the fix) when matplotlib is not installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # sys.modules["matplotlib"] is None
        found = False
    if not found:
        raise SummitError(PLOT_NEEDS)


def plot_report(report: dict, path: Path) -> Path:
    """A PNG bar chart comparing modes: the [0, 1] metrics of the question set and/or BEIR.
    matplotlib (the ``eval`` extra) is imported here and only here."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font cache chatter
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SummitError(PLOT_NEEDS) from None

    panels = []
    if "modes" in report:
        panels.append(("questions", report["modes"], [(p, label) for label, p in METRICS if p in PLOT_METRICS]))
    if "beir" in report:
        panels.append(("BEIR", report["beir"]["modes"], [(key, label) for label, key in BEIR_LABELS]))
    if not panels:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(max(6.0, 1.1 * max(len(p[2]) for p in panels) + 2), 3.6 * len(panels)), dpi=110)
    FigureCanvasAgg(fig)
    for i, (name, by_mode, metrics) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        modes = list(by_mode)
        width = 0.8 / max(1, len(modes))
        for j, mode in enumerate(modes):
            values = [lookup(by_mode[mode], p) or 0.0 for p, _ in metrics]
            xs = [x + (j - (len(modes) - 1) / 2) * width for x in range(len(metrics))]
            bars = ax.bar(xs, values, width, label=mode)
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=6, padding=1)
        ax.set_xticks(range(len(metrics)), [label for _, label in metrics], fontsize=8, rotation=20, ha="right")
        ax.set_ylim(0, 1.25)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_title(f"{name}: modes compared", fontsize=10)
        ax.legend(fontsize=8, loc="upper right", ncol=len(modes), frameon=False)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
