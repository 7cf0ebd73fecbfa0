"""Text-generation metrics: BLEU / Self-BLEU (exact to nltk, fast), distinct-n, tokenization."""
from gan_writer.metrics.bleu import (
    BleuReference,
    bleu,
    corpus_bleu,
    self_bleu,
    self_bleu_scores,
    sentence_bleu_scores,
)
from gan_writer.metrics.distinct import distinct_n, unique_samples
from gan_writer.metrics.text_tokenize import (
    SCHEMES,
    MetricTokenizer,
    scheme_for_language,
    tokenize_for_metrics,
)

__all__ = [
    "BleuReference",
    "bleu",
    "corpus_bleu",
    "self_bleu",
    "self_bleu_scores",
    "sentence_bleu_scores",
    "distinct_n",
    "unique_samples",
    "SCHEMES",
    "MetricTokenizer",
    "scheme_for_language",
    "tokenize_for_metrics",
]
