"""The `summit` command: a thin shell over the library.

Every command takes --documents and --index (env SUMMIT_DOCUMENTS_DIR, SUMMIT_INDEX_DIR) and
builds the index first when it is missing or stale (export-beir only reads the articles). Errors
print one line and exit non-zero.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from .errors import SummitError
from .settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Summit Assistant: cited answers about the Paris AI Action Summit.")
out = Console()
err = Console(stderr=True)

DocumentsOpt = typer.Option(None, "--documents", envvar="SUMMIT_DOCUMENTS_DIR", help="Folder of articles [default: ./documents]")
IndexOpt = typer.Option(None, "--index", envvar="SUMMIT_INDEX_DIR", help="Index folder [default: ./index]")
ModelOpt = typer.Option(None, "--model", envvar="SUMMIT_MODEL", help="use-multilingual (default), minilm, or a local sentence-transformers folder")
StoreOpt = typer.Option(None, "--store", envvar="SUMMIT_STORE", help="Where the index lives: faiss (default, under --index) or milvus (SUMMIT_MILVUS_URI; docs/milvus.md)")


def make_settings(documents: Optional[Path], index: Optional[Path], model: Optional[str] = None, **extra) -> Settings:
    overrides = {k: v for k, v in {"documents_dir": documents, "index_dir": index, "model": model, **extra}.items() if v is not None}
    try:
        return Settings(**overrides).check()
    except ValueError as exc:
        raise settings_error(exc) from None


def settings_error(exc: ValueError) -> SummitError:
    """A settings problem as one line naming the variable (pydantic's own message is a table)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [f"SUMMIT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in errors()]
        return SummitError("invalid settings: " + "; ".join(parts))
    return SummitError(f"invalid settings: {exc}".splitlines()[0])


@contextmanager
def progress_bar(enabled: bool = True):
    """A rich progress bar for long work; quiet when stderr is not a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def load_assistant(settings: Settings, *, rebuild: str = "stale", one_shot: bool = False):
    """one_shot: one question, then exit: no SentenceTransformer (the bundled engines answer) and
    no corpus-wide warm-up (Assistant's engines_only and warm_up)."""
    from .service import Assistant

    assistant = Assistant(settings, engines_only=one_shot, warm_up=not one_shot)
    with progress_bar() as update:
        assistant.load(rebuild=rebuild, progress=update)
    return assistant


def run(fn):
    """Turn library errors into a one-line message and an exit code."""
    try:
        return fn()
    except SummitError as exc:  # the message is text, not markup: "[eval]" or "[1]" must stay
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130)


@app.command()
def build(
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    force: bool = typer.Option(False, "--force", help="Rebuild even when the index is up to date (or damaged)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Index the valid documents and list the ones skipped."),
    as_json: bool = typer.Option(False, "--json", help="Print the build summary as JSON."),
    store: Optional[str] = StoreOpt,
):
    """Build the index from the documents (nothing to do when it is up to date)."""

    def go():
        from .service import Assistant

        settings = make_settings(documents, index, model, store=store)
        assistant = Assistant(settings)
        with progress_bar() as update:
            summary = assistant.build(force=force, skip_invalid=skip_invalid, progress=update)
        if as_json:
            print(json.dumps(summary, ensure_ascii=False, indent=2))
            return
        if not summary["built"]:
            out.print(f"index is up to date ({summary['build_id']}) — nothing to do", markup=False)
            return
        out.print(
            f"built index {summary['build_id']}: {summary['documents']} documents, {summary['chunks']} chunks, "
            f"{summary['sentences']} sentences ({summary['index_type']}) in {summary['seconds']:.2f}s"
            + (f", {summary['reused_documents']} unchanged documents reused" if summary["reused_documents"] else "")
            + (f" [milvus {summary['mode']}: +{len(summary.get('added', []))} ~{len(summary.get('changed', []))} "
               f"-{len(summary.get('removed', []))} documents]" if summary.get("mode") == "update" else ""),
            markup=False,
        )
        out.print(f"reason: {summary['reason']}", highlight=False, markup=False)
        for line in summary["skipped"]:
            err.print(f"[yellow]skipped:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)

    run(go)


@app.command()
def add(
    paths: list[str] = typer.Argument(..., help="Files (.html/.htm, .pdf, .txt, .md), folders of them, or - for standard input.", show_default=False),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    doc_id: Optional[str] = typer.Option(None, "--id", help="Document id (one file only; default: from the file name, or from the title for -)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title, when the file has none (or a wrong one)."),
    source: Optional[str] = typer.Option(None, "--source", help="Publisher, when the file does not name it (PDF, text)."),
    published: Optional[str] = typer.Option(None, "--published", help="Publication date, e.g. 2025-02-10."),
    url: Optional[str] = typer.Option(None, "--url", help="Canonical address of the article."),
    language: Optional[str] = typer.Option(None, "--language", help="fr or en, when the file does not say (or says wrong)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Add the usable files and list the others, instead of adding nothing."),
    replace: bool = typer.Option(False, "--replace", help="Replace a document with the same id (a corrected version) instead of refusing it."),
    as_json: bool = typer.Option(False, "--json", help="Print what was added as JSON."),
):
    """Add articles: extract the text and metadata, store documents/<id>.md beside the original,
    and update the index (only the new documents are embedded). All or nothing by default."""

    def go():
        from . import ingest
        from .errors import InvalidInputError
        from .service import Assistant

        settings = make_settings(documents, index, model)
        files, unsupported = ingest.expand_paths(paths)
        for name in unsupported:
            err.print(f"[yellow]skipped:[/yellow] {escape(name)}: unsupported type; supported: {ingest.SUPPORTED}", highlight=False)
        if not files:
            raise InvalidInputError("no .html, .htm, .pdf, .txt or .md file to add in " + ", ".join(paths))
        if len(files) > 1:
            one = [name for name, value in (("--id", doc_id), ("--title", title), ("--url", url)) if value is not None]
            if one:
                raise InvalidInputError(f"{', '.join(one)} describe(s) one document; give one file with it")
        if files.count("-") > 1:
            raise InvalidInputError("standard input (-) can be read once")
        overrides = ingest.Overrides(doc_id=doc_id, title=title, source=source, published=published, url=url, language=language)
        inputs = []
        for name in files:
            item = ingest.read_input(name, settings.max_upload_bytes)
            item.overrides = overrides
            inputs.append(item)
        settings.documents_dir.mkdir(parents=True, exist_ok=True)
        assistant = Assistant(settings)
        with progress_bar() as update:
            result = ingest.add_documents(_with_progress(assistant, update), inputs, skip_invalid=skip_invalid, replace=replace)
        if as_json:
            print(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            for doc in result["added"]:
                when = f", {doc['published']}" if doc["published"] else ""
                out.print(f"added {doc['doc_id']}: {doc['title']} — {doc['source']}{when} "
                          f"({doc['format']}, {doc['characters']:,} characters, {doc['chunks']} passages)", highlight=False, soft_wrap=True, markup=False)
                for note in doc["notes"]:
                    err.print(f"[yellow]note:[/yellow] {doc['doc_id']}: {escape(note)}", highlight=False)
            build = result["build"]
            out.print(f"index {build['build_id']}: {build.get('documents', '?')} documents; "
                      f"embedded {build.get('embedded_texts', 0)} new texts", highlight=False, soft_wrap=True, markup=False)
        for line in result["skipped"]:
            err.print(f"[yellow]skipped:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)

    run(go)


@app.command()
def remove(
    doc_ids: list[str] = typer.Argument(..., help="Ids of the documents to remove (see `summit ask --json` or GET /api/documents).", show_default=False),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
):
    """Remove documents (the .md and its original) and update the index."""

    def go():
        from . import ingest
        from .service import Assistant

        assistant = Assistant(make_settings(documents, index, model))
        for doc_id in doc_ids:
            ingest.check_id(doc_id, "document id")
        for doc_id in doc_ids:
            result = ingest.delete_document(assistant, doc_id)
            out.print(f"removed {doc_id} ({', '.join(result['files'])}); index {result['build']['build_id']}", highlight=False, markup=False)

    run(go)


@app.command()
def reextract(
    doc_ids: list[str] = typer.Argument(None, help="Ids of the documents to redo [default: every document with a kept original].", show_default=False),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
):
    """Redo the extraction of added documents from their originals (documents/originals/), e.g.
    after upgrading the extractor, and update the index if anything changed."""

    def go():
        from . import ingest
        from .service import Assistant

        assistant = Assistant(make_settings(documents, index, model))
        with progress_bar() as update:
            result = ingest.reextract(_with_progress(assistant, update), doc_ids or None)
        for line in result["skipped"]:
            err.print(f"[yellow]skipped:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
        out.print(f"re-extracted {len(result['changed'])} document(s)" + (f": {', '.join(result['changed'])}" if result["changed"] else "")
                  + f"; {len(result['unchanged'])} unchanged"
                  + (f"; index {result['build']['build_id']}" if result["build"] else ""), highlight=False, soft_wrap=True, markup=False)

    run(go)


class _with_progress:
    """An assistant whose build() shows the progress bar."""

    def __init__(self, assistant, update):
        self._assistant, self._update = assistant, update

    def __getattr__(self, name):
        return getattr(self._assistant, name)

    def build(self, **kw):
        return self._assistant.build(progress=self._update, **kw)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in French or English."),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    k: Optional[int] = typer.Option(None, "--k", help="How many cited passages (1-20) [default: SUMMIT_TOP_K, 5].", show_default=False),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid, dense or lexical [default: SUMMIT_MODE, hybrid].", show_default=False),
    history: list[str] = typer.Option([], "--history", help="A previous question (repeat, oldest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer object as JSON."),
    store: Optional[str] = StoreOpt,
):
    """Answer a question with numbered citations."""

    def go():
        from .service import validate

        settings = make_settings(documents, index, model, store=store)
        k_, mode_ = settings.top_k if k is None else k, mode or settings.mode
        validate(question, history, k_, mode_)  # fail fast, before loading anything
        # One question, then exit: the bundled encoders' engines answer it (the very vectors
        # of the SentenceTransformer), so torch is never imported, and the per-sentence tables
        # are computed for the sentences it retrieves only (~2 s cold instead of ~12 s).
        assistant = load_assistant(settings, one_shot=True)
        answer = assistant.ask(question, history=history, k=k_, mode=mode_)
        if as_json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
            return
        print_answer(answer)

    run(go)


def print_answer(answer) -> None:
    from rich.text import Text

    if not answer.found:
        out.print(Text(answer.answer, style="yellow"))
        return
    out.print(Text(answer.answer, style="bold"))
    for c in answer.citations:
        doc_text = c.passage
        (h0, h1), base = c.highlights[0], c.start
        line = Text(f"[{c.n}] ", style="cyan")
        line.append(f"{c.title} — {c.source}" + (f", {c.published}" if c.published else ""), style="dim")
        out.print(line)
        body = Text("    ")
        body.append(doc_text[: h0 - base])
        body.append(doc_text[h0 - base : h1 - base], style="reverse")
        body.append(doc_text[h1 - base :])
        out.print(body)
    out.print(Text(f"({answer.took_ms:.1f} ms)", style="dim"))


@app.command()
def serve(
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    host: str = typer.Option("127.0.0.1", "--host", envvar="SUMMIT_HOST"),
    port: int = typer.Option(8000, "--port", envvar="SUMMIT_PORT"),
    store: Optional[str] = StoreOpt,
):
    """Run the HTTP API, the OpenAI-compatible endpoint and the chat widget."""

    def go():
        from api.server import run_server
        from api.settings import ApiSettings

        settings = make_settings(documents, index, model, store=store)
        try:
            api_settings = ApiSettings()  # the server's own (SUMMIT_CORS_ORIGINS, SUMMIT_MAX_BODY_BYTES, ...)
        except ValueError as exc:
            raise settings_error(exc) from None
        if settings.store == "milvus":
            from .milvus_store import Connection

            Connection(settings).close()  # a bad URI is a one-line error here; an unreachable server is not (see /api/health)
        run_server(settings, api_settings, host=host, port=port)

    run(go)


def _write_output(path: Path, write) -> None:
    """Write one output file (creating its folder); an OS error becomes a one-line SummitError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise SummitError(f"cannot write {path}: {exc.strerror or exc}") from None
    err.print(f"wrote {path}", highlight=False, markup=False)


EVAL_CORPUS = Path("eval/corpus")
EVAL_SPLITS = Path("eval/splits.json")
EVAL_INDEX = Path("eval/out/index")


def _eval_settings(documents, index, model, corpus: Optional[Path]):
    """Settings of the held-out evaluation: documents/ plus the test texts, in their own index."""
    extra = [corpus] if corpus is not None else []
    if corpus is not None and not corpus.is_dir():
        from .errors import InvalidInputError

        raise InvalidInputError(f"evaluation corpus {corpus} is not a folder")
    return make_settings(documents, index, model, extra_documents_dirs=extra or None)


@app.command("eval")
def eval(  # noqa: A001 - the command is `summit eval`
    questions: Optional[list[Path]] = typer.Argument(None, help="Question files (JSONL). Without any: the dev and test splits of eval/splits.json, with eval/corpus indexed next to documents/.", show_default=False),
    split: str = typer.Option("both", "--split", help="Without question files: dev, test or both."),
    splits_file: Path = typer.Option(EVAL_SPLITS, "--splits", help="The split definition (question files per split)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Extra folder of articles indexed next to documents/ [default with splits: eval/corpus]."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense, lexical, or all (every mode, one model load)."),
    k: int = typer.Option(5, "--k", help="Citations per answer (1-20); ranking metrics look at these."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics and per-question rows as JSON."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a Markdown report (tables and misses)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG bar chart comparing the modes."),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    beir: Optional[Path] = typer.Option(None, "--beir", help="Also (or only) score retrieval on a BEIR folder: nDCG@10, recall@10, MRR@10."),
    show_misses: bool = typer.Option(True, "--misses/--no-misses", help="List the misses on the terminal."),
    from_feedback: Optional[Path] = typer.Option(None, "--from-feedback", help="Only convert a feedback file (JSONL) into a question file to review, printed on stdout."),
):
    """Evaluate: by default the held-out dev and test splits (eval/splits.json) with the test texts
    of eval/corpus indexed next to documents/; or given question files; or a BEIR dataset."""
    if from_feedback is not None:  # a conversion, not an evaluation (assistant/feedback.py)
        return run(lambda: _export_feedback(from_feedback))

    def go():
        import datetime

        from benchmarks import reporting

        from . import evaluation as ev
        from .errors import InvalidInputError

        modes = ev.parse_modes(mode)
        if plot is not None:  # before the model and the questions, not after
            reporting.require_matplotlib()
        from .requests import MAX_K

        if not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, got {k}")
        sets: dict[str, list] = {}
        use_corpus = corpus
        index_dir = index
        if questions:
            sets["questions"] = ev.load_question_files(questions)  # fail fast, before the model
        elif beir is None:
            names = ["dev", "test"] if split == "both" else [split]
            for name in names:
                if name not in ("dev", "test"):
                    raise InvalidInputError(f"--split must be dev, test or both, got {split!r}")
                sets[name] = ev.load_question_files(ev.split_files(splits_file, name))
            use_corpus = corpus if corpus is not None else EVAL_CORPUS
            index_dir = index if index is not None else EVAL_INDEX
        beir_data = None
        if beir is not None:
            from benchmarks.beir import load_beir

            beir_data = load_beir(beir)
        settings = _eval_settings(documents, index_dir, model, use_corpus)
        result: dict = {}
        meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "modes": ", ".join(modes)}
        embedder = None
        if sets:
            # eval/out/index is the evaluation's own: rebuilt when damaged or built with other settings
            assistant = load_assistant(settings, rebuild="any" if index is None and not questions else "stale")
            embedder = assistant.embedder
            meta.update({"k": k, "model": assistant.embedder.id, "index build": assistant.index.build_id,
                         "documents": ", ".join(str(d) for d in [settings.documents_dir, *settings.extra_documents_dirs])})
            reports = {}
            for name, qs in sets.items():
                with progress_bar() as update:
                    step = (lambda m, done, total, n=name: update(f"asking {n} ({m})", done, total)) if update else None
                    rows = ev.run_modes(assistant, qs, modes, k=k, progress=step)
                reports[name] = ev.build_report(rows)
                out.print(f"[bold]{name}[/bold] " + reporting.header_line(rows, k), highlight=False)
                out.print(reporting.modes_table(reports[name]))
                out.print(reporting.language_table(reports[name]))
                if show_misses:
                    out.print(reporting.misses_view(rows))
            if list(reports) == ["questions"]:
                result.update(reports["questions"])
            else:
                result["splits"] = reports
        if beir_data is not None:
            from benchmarks.beir import evaluate_beir

            meta["BEIR"] = str(beir)
            with progress_bar() as update:
                step = (lambda m, done, total: update(f"searching ({m})", done, total)) if update else None
                result["beir"] = evaluate_beir(beir, settings, modes, data=beir_data, embedder=embedder, build_progress=update, progress=step)
            out.print(reporting.beir_header(result["beir"]), highlight=False)
            out.print(reporting.beir_table(result["beir"]))
        if json_out is not None:
            _write_output(json_out, lambda p: p.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"))
        if report is not None:
            def write_md(p):
                if "splits" in result:
                    parts = [reporting.markdown_report(r, title=f"Summit Assistant evaluation — {n} split", meta=meta) for n, r in result["splits"].items()]
                    p.write_text("\n\n".join(parts), encoding="utf-8")
                else:
                    p.write_text(reporting.markdown_report(result, meta=meta), encoding="utf-8")
            _write_output(report, write_md)
        if plot is not None:
            _write_output(plot, lambda p: reporting.plot_report(result["splits"].get("test") or next(iter(result["splits"].values()))
                                                                if "splits" in result else result, p))

    run(go)


def _export_feedback(path: Path) -> None:
    from .feedback import export_questions

    lines, summary = export_questions(path)
    for line in lines:
        print(line)
    bad = f"; {len(summary['bad_lines'])} unreadable line(s) skipped: {summary['bad_lines'][:10]}" if summary["bad_lines"] else ""
    err.print(f"{summary['questions']} questions from {summary['votes']} votes, {summary['to_review']} marked \"review\": true "
              f"(fill their answers/evidence before using the file){bad}", highlight=False, markup=False)


@app.command("fit")
def fit(
    splits_file: Path = typer.Option(EVAL_SPLITS, "--splits", help="The split definition; only its dev split is read."),
    corpus: Path = typer.Option(EVAL_CORPUS, "--corpus", help="Test texts indexed next to documents/ for fitting."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Where to write the weights [default: assistant/weights.json; with SUMMIT_LATENT_TERMS=false, assistant/weights-no-latent.json]."),
    max_false_rate: float = typer.Option(0.01, "--max-false-abstentions", help="Share of answerable dev questions the abstention threshold may refuse."),
    cv: bool = typer.Option(False, "--cv", help="Only cross-validate: leave each dev article out in turn, fit on the others, print held-out figures; write no weights."),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
):
    """Fit the sentence scorer and the abstention model on the dev split; write their weights.

    The dev questions are asked against three corpora, so that the models hold however many
    articles, in whichever languages, are indexed: documents/ alone (the seed questions),
    documents/ with every test text, and documents/ with the French test texts only.

    With --cv nothing is written: each dev article is held out in turn, both models are fitted
    on the other articles' questions, and the held-out figures are printed (judge a change with
    these before refitting; the test split stays unread)."""

    def go():
        import shutil

        from . import evaluation as ev
        from . import fitting
        from .documents import load_documents
        from .embedding import EncoderSet
        from .scoring import default_weights_file, save_weights
        from .service import Assistant

        qs = ev.load_question_files(ev.split_files(splits_file, "dev"))
        base = _eval_settings(documents, index if index is not None else EVAL_INDEX, model, corpus)
        encoders = EncoderSet.from_settings(base).load()
        french = Path(f"{base.index_dir}-corpus-fr")
        shutil.rmtree(french, ignore_errors=True)
        french.mkdir(parents=True)
        tests, _ = load_documents(corpus, base.boilerplate_patterns)
        for d in tests:
            if d.language == "fr":
                shutil.copy2(d.path, french / Path(d.path).name)
        variants = [
            ("all articles", base, None),
            ("documents/ only", base.model_copy(update={"extra_documents_dirs": [], "index_dir": Path(f"{base.index_dir}-seed")}), []),
            ("French articles", base.model_copy(update={"extra_documents_dirs": [french], "index_dir": Path(f"{base.index_dir}-fr")}),
             [d.doc_id for d in tests if d.language == "fr"]),
        ]
        runs = []
        with progress_bar() as update:
            for name, settings, docs in variants:
                assistant = Assistant(settings, embedder=encoders).load(rebuild="any", progress=update)  # fit's own indexes
                texts = [assistant.index.document(d["doc_id"])["text"] for d in assistant.index.document_list()]
                keep = qs if docs is None else [q for q in qs if q.doc is None or q.doc in docs]
                runs.append((assistant, fitting.for_corpus(keep, texts)))
                err.print(f"{name}: {assistant.index.counts()['documents']} articles, {len(runs[-1][1])} dev questions", highlight=False, markup=False)
            if cv:
                report = fitting.cross_validate(runs, max_false_rate=max_false_rate, progress=update)
            else:
                weights, summary = fitting.fit(runs, max_false_rate=max_false_rate, progress=update)
        if cv:
            out.print(json.dumps(report, indent=1), highlight=False, markup=False)
            return
        path = save_weights(weights, out_file or default_weights_file(base.latent_terms))
        out.print(json.dumps(summary, indent=1), highlight=False)
        out.print(f"wrote {path}", highlight=False, markup=False)

    run(go)


@app.command("export-beir")
def export_beir(
    outdir: Path = typer.Argument(..., help="Folder to write corpus.jsonl, queries.jsonl and qrels/test.tsv into."),
    questions: Path = typer.Option(Path("eval/corpus/questions/seed-gold.jsonl"), "--questions", help="Gold question file (JSONL)."),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = typer.Option(None, "--index", envvar="SUMMIT_INDEX_DIR", help="Index folder, accepted as by every command; "
                                         "not read: the chunks are made from the articles exactly as a build makes them."),
):
    """Write our chunks and gold questions as a BEIR dataset (no model needed)."""

    def go():
        from benchmarks.beir import export_beir as write_export

        from .evaluation import load_questions

        qs = load_questions(questions)
        try:
            summary = write_export(make_settings(documents, index), qs, outdir)
        except OSError as exc:
            raise SummitError(f"cannot write {outdir}: {exc.strerror or exc}") from None
        skipped = summary["skipped"]
        out.print(
            f"wrote {outdir}: {summary['corpus']} passages, {summary['queries']} queries, {summary['qrels']} relevance judgements "
            f"(left out: {len(skipped['unanswerable'])} unanswerable, {len(skipped['follow_up'])} follow-ups, "
            f"{len(skipped['no_relevant_chunk'])} with evidence split across chunks)",
            highlight=False,
        )
        if skipped["no_relevant_chunk"]:
            err.print(f"[yellow]no chunk holds the evidence of:[/yellow] {escape(', '.join(skipped['no_relevant_chunk']))}", highlight=False)

    run(go)


@app.command()
def bench(
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every figure as JSON (e.g. artifacts/bench.json)."),
    quick: bool = typer.Option(False, "--quick", help="A short run (~2-3 min): 3 s load levels, scale corpora of 2k and 10k only."),
    documents: Optional[Path] = DocumentsOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    questions: Optional[Path] = typer.Option(None, "--questions", help="Question file (JSONL) to ask [default: the test split of eval/splits.json]."),
    corpus: str = typer.Option(str(EVAL_CORPUS), "--corpus", help="Extra articles indexed next to documents/ (the evaluation corpus); '' for none."),
    sections: str = typer.Option("all", "--sections", help="Comma list of inprocess, http, startup, build, scale (or all)."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Scale corpus sizes, e.g. 10000,100000,1000000."),
    pool: Optional[int] = typer.Option(None, "--pool", help="Synthetic passages embedded with the real model for the scale curve."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Seconds per HTTP concurrency level [20, quick 3]."),
    loadgen: str = typer.Option("auto", "--loadgen", help="auto (wrk when installed), wrk, or python."),
    store: Optional[str] = typer.Option(None, "--store", help="milvus: compare the Milvus store with FAISS on the same corpus, "
                                        "and its scale curve on milvus-lite (sections milvus, milvus_scale)."),
):
    """Measure latency, throughput, start-up, index build and the scale curve; print a table."""

    def go():
        import time as _time

        from benchmarks import bench as benchmod

        if store not in (None, "faiss", "milvus"):
            from .errors import InvalidInputError

            raise InvalidInputError(f"--store must be faiss or milvus, got {store!r}")
        chosen = benchmod.parse_sections(sections)
        if store == "milvus" and sections == "all":
            chosen = ("milvus", "milvus_scale")
        cfg = benchmod.BenchConfig.make(
            quick, questions=questions, sections=chosen, scale_sizes=benchmod.parse_sizes(sizes),
            scale_pool=pool, http_seconds=seconds, loadgen=benchmod.parse_loadgen(loadgen), store=store,
        )
        benchmod.gold_questions(cfg.questions)  # fail fast, before loading anything
        use_corpus = Path(corpus) if corpus.strip() else None
        settings = _eval_settings(documents, index if index is not None else (EVAL_INDEX if use_corpus else None), model, use_corpus)
        t0 = _time.perf_counter()
        result = benchmod.run_bench(settings, cfg, log=lambda msg: err.print(f"[dim]{_time.perf_counter() - t0:7.1f}s[/dim] {escape(msg)}", highlight=False))
        out.print(benchmod.summary_table(result))
        if json_out is not None:
            _write_output(json_out, lambda p: p.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"))

    run(go)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("sentence_transformers", "faiss", "faiss.loader", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for noisy in ("trafilatura", "htmldate", "courlan", "pypdf"):  # extraction internals, not the user's concern
        logging.getLogger(noisy).setLevel(logging.ERROR)
    app()


if __name__ == "__main__":
    main()
