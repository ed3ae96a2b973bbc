"""The library's settings, shared by the CLI and the API; every field can be set from the environment
with the ``SUMMIT_`` prefix (e.g. ``SUMMIT_INDEX_DIR=/srv/index``). The HTTP server's own settings
(CORS, body size, rate limit, admin token, feedback file, suggested questions) are
``api.settings.ApiSettings``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "use-multilingual"
DEFAULT_EXTRA_MODELS = ["e5-small"]

# Lines removed from every article before indexing (case-insensitive regular expressions matched
# against a whole stripped line). Site chrome, sign-up prompts and credit lines, not content.
DEFAULT_BOILERPLATE_PATTERNS: list[str] = [
    r"bienvenue sur .{1,40}",
    r"(sources?|crédits?|credits?|photo|copyright|©)\s*:.*",
    r".*\b(activ\w+|recev\w+|autoris\w+) les notifications?\b.*",
    r".*\bnotifications?\b.*\b(navigateur|browser|désabonner|unsubscribe)\b.*",
    r".*\b(inscrivez-vous|abonnez-vous|newsletter|subscribe|sign up|log in|connectez-vous)\b.*",
    r"(je crée|créer|créez) (mon|un|votre) compte.*",
    r".*\b(accepter|refuser|gérer) (les|mes) cookies\b.*",
    r"(lire aussi|à lire aussi|read more|voir aussi|publicité|advertisement)\b.*",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUMMIT_", extra="ignore")

    documents_dir: Path = Path("documents")
    # More folders of articles indexed next to documents_dir (the evaluation adds eval/corpus).
    extra_documents_dirs: list[Path] = Field(default_factory=list)
    index_dir: Path = Path("index")

    # Embedding model: "use-multilingual" (default, French + English), "minilm" (English
    # all-MiniLM-L6-v2 shipped in a package), or a local sentence-transformers folder.
    model: str = DEFAULT_MODEL
    # More encoders whose dense rankings and cosines join the primary one's (the primary model
    # alone embeds the corpus vocabulary for cross-lingual word matching). [] = primary only.
    extra_models: list[str] = Field(default_factory=lambda: list(DEFAULT_EXTRA_MODELS))
    threads: int = Field(default=1, ge=1, le=64)
    # Threads of the e5 engine's own OpenMP pool: a question is embedded on both cores (10 ms
    # instead of 18 ms on 2 cores; answers are computed one at a time, so nothing oversubscribes).
    encoder_threads: int = Field(default=2, ge=1, le=64)
    # Latent terms: the e5 engine's sparse head codes every sentence at build time and each
    # question at query time; their overlap is a sentence-scoring feature (measured on dev,
    # leave-one-article-out: sentence top-1 0.513 -> 0.549). Costs a second e5 pass per
    # question. Off, or without e5 among the encoders, the feature is neutral.
    latent_terms: bool = True
    # Language centring of the dense cosines (centring.py): each side loses its language's mean
    # direction (the corpus's sentences per language, the dev questions' per language, fitted by
    # `summit fit`) before question and sentence are compared. Off = raw cosines, as fitted into
    # weights files that hold no question means.
    centring: bool = True

    chunk_sentences: int = Field(default=3, ge=1, le=20)
    chunk_overlap: int = Field(default=1, ge=0, le=19)
    chunk_max_chars: int = Field(default=1200, ge=200)

    # Build-time entity and back-reference annotation with spaCy (annotate.py).
    annotate: bool = True

    boilerplate_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_BOILERPLATE_PATTERNS))

    # "auto" picks flat (exact) under hnsw_threshold vectors, HNSW above.
    index_type: Literal["auto", "flat", "hnsw"] = "auto"
    # Measured (summit bench): flat search p95 is 3.1 ms at 20k vectors, 7.9 ms at 50k.
    hnsw_threshold: int = Field(default=20_000, ge=1)

    top_k: int = Field(default=5, ge=1, le=20)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    # Abstain when the answer's fitted confidence is below this; None = the threshold fitted on
    # the dev split (assistant/weights.json, `summit fit`).
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # The fitted models (summit fit); unset = assistant/weights.json.
    weights_file: Path | None = None
    # Finished answers kept per index build (0 = off); the same questions come back a lot.
    answer_cache_size: int = Field(default=2048, ge=0)

    # Where the index lives (docs/milvus.md). "faiss": a build folder under index_dir, loaded whole
    # into each process (the default; nothing else to run). "milvus": collections in Milvus.
    store: Literal["faiss", "milvus"] = "faiss"
    # A file path ending in .db = milvus-lite (embedded, one process at a time); http(s)://host:19530
    # = a Milvus server or cluster. Default: <index_dir>/milvus.db.
    milvus_uri: str | None = None
    milvus_token: str | None = Field(default=None, repr=False)  # "user:password" or an API key
    milvus_database: str = ""  # "" = the server's default database
    # Collection names start with this: <prefix>_g<generation>_<chunks|sentences|documents|vocab|meta>,
    # the alias <prefix>_current, and <prefix>_control (the build lock).
    milvus_prefix: str = Field(default="summit", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
    milvus_timeout: float = Field(default=10.0, gt=0, le=600)  # seconds per Milvus call
    # Replicas check the published build every this many seconds and switch to a new one.
    milvus_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    # Rows and collections a newer build replaced are kept this long for replicas still reading them.
    milvus_grace_seconds: float = Field(default=60.0, ge=0)
    # Seconds a build waits between its last write and publishing it, so that replicas reading
    # with Milvus' default "Bounded" consistency see every row; None = 0 on milvus-lite, 5 on a server.
    milvus_publish_delay: float | None = Field(default=None, ge=0, le=600)
    # Memory bounds per replica (docs/milvus.md states the memory at 1M passages).
    milvus_vocab_max: int = Field(default=100_000, ge=0)  # corpus words kept for cross-lingual matching
    milvus_cache_rows: int = Field(default=100_000, ge=1000)  # chunk / sentence records cached per level
    milvus_vector_cache_rows: int = Field(default=20_000, ge=100)  # stored vectors cached per level
    # What Milvus' BM25 function analyses: "terms" = our stems of each passage (the same terms and
    # scores as the FAISS store), "text" = the raw passage text (Milvus' analyzer alone).
    milvus_bm25_input: Literal["terms", "text"] = "terms"
    # Dense index: "auto" = FLAT (exact) under hnsw_threshold vectors, HNSW above; or a Milvus type.
    milvus_index: Literal["auto", "FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "DISKANN"] = "auto"

    # Adding articles (summit add, POST /api/documents): the largest file accepted.
    max_upload_bytes: int = Field(default=20_000_000, ge=1024)

    def check(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_sentences:
            raise ValueError(
                f"chunk_overlap must be smaller than chunk_sentences "
                f"(got overlap={self.chunk_overlap}, sentences={self.chunk_sentences})"
            )
        return self
