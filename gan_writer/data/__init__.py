"""Corpora for gan_writer: named corpora, user files, download with checksum, deterministic splits.

Quick use::

    from gan_writer.data import load_corpus, list_corpora
    splits = load_corpus("shi", seed=0)          # CorpusSplits(train, valid, test, ...)
    splits = load_corpus("my_poems.jsonl", text_field="body")

Files are looked up in ``data_dir`` / ``$GAN_WRITER_DATA``, then the cache
(``$GAN_WRITER_CACHE`` or ``~/.cache/gan_writer``), then downloaded (``$GAN_WRITER_MIRROR``
overrides the source URLs) with sha256 verification.
"""
from .corpora import (CorpusOptionError, CorpusSplits, UnknownCorpusError, corpus_files,
                      corpus_options, fetch_corpus, list_corpora, load_corpus, registry)
from .fetch import ChecksumError, DownloadError, default_cache_dir, download, resolve_file, sha256_file
from .readers import (FORMATS, CorpusDecodeError, CorpusError, CorpusFormatError, CorpusNotFoundError,
                      EmptyCorpusError, detect_language, read_samples, read_text, strip_gutenberg)
from .split import carve, split_counts, split_samples

__all__ = [
    "CorpusSplits", "load_corpus", "list_corpora", "corpus_options", "corpus_files", "fetch_corpus",
    "registry", "resolve_file", "download", "default_cache_dir", "sha256_file", "read_samples",
    "read_text", "strip_gutenberg", "detect_language", "FORMATS", "split_samples", "split_counts",
    "carve", "CorpusError", "CorpusNotFoundError", "CorpusFormatError", "CorpusDecodeError",
    "EmptyCorpusError", "ChecksumError", "DownloadError", "UnknownCorpusError", "CorpusOptionError",
]
