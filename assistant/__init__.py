"""Summit Assistant: offline bilingual retrieval with cited answers over the summit articles."""

__version__ = "0.1.0"
