"""Synthetic data for the SeqGAN NLL-oracle benchmark (Yu et al. 2017, SeqGAN, section 4).

:class:`OracleDataModule` loads the oracle LSTM (:class:`gan_writer.models.oracle.OracleLSTM`)
from SeqGAN's ``target_params_py3.pkl`` (or draws a random one from a seed), samples the
training set (10,000 sequences of 20 tokens, as in the paper) and a separate held-out set
with fixed seeds, and serves them as ``{"ids", "attention_mask"}`` batches like
:class:`gan_writer.data.datamodule.TextDataModule`. Its tokenizer (:func:`id_tokenizer`)
maps ids to the strings ``"0" .. "4999"`` so samples decode to text such as
``"12 4051 7 ..."`` and checkpoints can store it like any other tokenizer.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from gan_writer.data.fetch import data_dirs
from gan_writer.models.oracle import OracleLSTM

__all__ = ["DEFAULT_ORACLE_PARAMS", "VALID_SEED_OFFSET", "OracleDataModule", "id_tokenizer", "resolve_oracle_params"]

#: Data-folder path of SeqGAN's oracle (LantaoYu/SeqGAN ``save/target_params_py3.pkl``).
DEFAULT_ORACLE_PARAMS = "oracle/target_params_py3.pkl"
#: The held-out set is drawn with ``sample_seed + VALID_SEED_OFFSET``.
VALID_SEED_OFFSET = 1_000_003


def id_tokenizer(vocab_size: int = 5000) -> PreTrainedTokenizerFast:
    """Tokenizer whose tokens are the decimal ids ``"0" .. str(vocab_size - 1)``.

    Words are split on whitespace; decoding joins ids with spaces. BOS and PAD are token
    ``"0"`` (id 0, SeqGAN's start token, also an ordinary token); there is no EOS and no
    unknown token (encoding a word outside the vocabulary raises). ``len(tok) == vocab_size``.

    Note: because id 0 is BOS/PAD, ``decode(..., skip_special_tokens=True)`` drops every 0;
    decode oracle samples with ``skip_special_tokens=False`` (they have no padding).
    """
    tok = Tokenizer(models.WordLevel(vocab={str(i): i for i in range(vocab_size)}))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # single_word: without it the added token "0" would also match inside "4051"
    zero = AddedToken("0", single_word=True, normalized=False, special=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=zero, pad_token=zero)
    fast.init_kwargs["gan_writer_kind"] = "ids"
    return fast


def resolve_oracle_params(path: str) -> Path:
    """The oracle parameter file: ``path`` as given, else under each data folder
    (``$GAN_WRITER_DATA``) for a relative path.

    Raises:
        FileNotFoundError: naming every place looked at and how to use a random oracle.
    """
    given = Path(path).expanduser()
    candidates = [given] + ([] if given.is_absolute() else [d / given for d in data_dirs()])
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"oracle parameters {path!r} not found (looked in: {', '.join(str(c) for c in candidates)}). "
        f"Set GAN_WRITER_DATA to the folder holding {DEFAULT_ORACLE_PARAMS} (SeqGAN's "
        "save/target_params_py3.pkl), pass data.oracle_params: /path/to/target_params_py3.pkl, "
        "or use a random N(0, 1) oracle with data.oracle_params: null and data.oracle_seed: N"
    )


class _Rows(Dataset):
    """One split: items are rows of ``tensor``; ``ids`` holds the same rows as lists of ints,
    the form :class:`~gan_writer.data.datamodule.TextDataModule`'s datasets expose (read by
    the discriminator stages' ``real_batch``)."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.tensor = ids
        self.ids = ids.tolist()

    def __len__(self) -> int:
        return self.tensor.size(0)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tensor[i]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        """A whole batch ``(B, T)`` in one indexing op (``DataLoader`` calls this instead of
        ``B`` calls of ``__getitem__`` and a stack; the same rows)."""
        return self.tensor[indices]


def _collate(rows: torch.Tensor | list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = rows if isinstance(rows, torch.Tensor) else torch.stack(rows)
    return {"ids": ids, "attention_mask": torch.ones_like(ids)}


class OracleDataModule(L.LightningDataModule):
    """Oracle-sampled train/valid/test batches for the NLL-oracle benchmark.

    The sets are sampled in ``__init__`` (on CPU; same arguments, same tensors), so the
    training module can be linked to ``.tokenizer`` and ``.max_length`` like with
    :class:`~gan_writer.data.datamodule.TextDataModule`. Test batches are the held-out set.

    Args:
        oracle_params: SeqGAN's ``target_params_py3.pkl``: a path, or a path relative to
            the data folder (default ``oracle/target_params_py3.pkl`` under
            ``$GAN_WRITER_DATA``); None for a random N(0, 1) oracle from ``oracle_seed``.
        oracle_seed: seed of the random oracle (used only when ``oracle_params`` is None).
        num_train: training sequences (SeqGAN: 10,000).
        num_valid: held-out sequences, drawn with ``sample_seed + VALID_SEED_OFFSET``.
        seq_len: tokens per sequence (SeqGAN: 20); no EOS, every position is real.
        batch_size: sequences per batch (SeqGAN: 64).
        sample_seed: seed of the training set draw (SeqGAN's ``SEED = 88``); also seeds
            the training-batch shuffling.
        num_workers: DataLoader workers.
        vocab_size, emb_dim, hidden_dim: sizes of the random oracle (SeqGAN: 5,000, 32, 32).

    Attributes:
        oracle: the :class:`OracleLSTM` (eval mode, frozen).
        tokenizer: :func:`id_tokenizer` for the oracle's vocabulary.
        max_length: ``seq_len``.
        metric_tokenization: ``"ids"`` (texts are space-separated ids).
        ids: ``{"train": (num_train, seq_len), "valid": (num_valid, seq_len)}`` int64.
        datasets: ``{"train", "valid", "test"}`` (test = valid) datasets of those rows, with
            ``.ids`` as lists of ints like the text data module's (used by the
            discriminator and adversarial stages to draw real samples).

    Raises:
        FileNotFoundError: if ``oracle_params`` is given but cannot be found.
        ValueError: for a bad parameter file or non-positive sizes.
    """

    def __init__(
        self,
        oracle_params: str | None = DEFAULT_ORACLE_PARAMS,
        oracle_seed: int = 0,
        num_train: int = 10000,
        num_valid: int = 1000,
        seq_len: int = 20,
        batch_size: int = 64,
        sample_seed: int = 88,
        num_workers: int = 0,
        vocab_size: int = 5000,
        emb_dim: int = 32,
        hidden_dim: int = 32,
    ) -> None:
        from gan_writer.systems.options import check_options

        check_options("data.init_args", locals(), {
            "oracle_seed": ">= 0", "num_train": ">= 1", "num_valid": ">= 1", "seq_len": ">= 1", "batch_size": ">= 1",
            "sample_seed": ">= 0", "num_workers": ">= 0", "vocab_size": ">= 2", "emb_dim": ">= 1", "hidden_dim": ">= 1"})
        super().__init__()
        self.save_hyperparameters()
        self.hparams["corpus"] = "oracle"  # read by the stages' checkpoint metadata
        if oracle_params is None:
            self.oracle = OracleLSTM.random(oracle_seed, vocab_size, emb_dim, hidden_dim)
        else:
            self.oracle = OracleLSTM.from_pickle(resolve_oracle_params(oracle_params))
        self.oracle.eval()
        self.tokenizer = id_tokenizer(self.oracle.vocab_size)
        self.max_length = seq_len
        self.batch_size = batch_size
        self.metric_tokenization = "ids"
        self.ids = {
            "train": self.oracle.sample_dataset(num_train, seq_len, seed=sample_seed),
            "valid": self.oracle.sample_dataset(num_valid, seq_len, seed=sample_seed + VALID_SEED_OFFSET),
        }
        valid = _Rows(self.ids["valid"])
        self.datasets = {"train": _Rows(self.ids["train"]), "valid": valid, "test": valid}
        self._texts: dict[str, list[str]] = {}

    def texts(self, split: str) -> list[str]:
        """Sequences of ``split`` (``train``, ``valid``, ``test`` = valid) as ``"12 4051 7 ..."``.

        Raises:
            KeyError: for another split name.
        """
        split = "valid" if split == "test" else split
        if split not in self.ids:
            raise KeyError(f"unknown split {split!r}: use 'train', 'valid' or 'test'")
        if split not in self._texts:
            self._texts[split] = [" ".join(map(str, row)) for row in self.ids[split].tolist()]
        return self._texts[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.hparams.sample_seed) if shuffle else None
        return DataLoader(
            self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, drop_last=False,
            collate_fn=_collate, num_workers=self.hparams.num_workers, generator=gen,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)
