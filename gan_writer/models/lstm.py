"""SeqGAN's LSTM generator as a :class:`CausalGenerator` backend, and the recurrent decoding
machinery it shares with the oracle (:mod:`gan_writer.models.oracle`).

Architecture of Yu et al. 2017 (SeqGAN; LantaoYu/SeqGAN ``generator.py``): token embedding
(32) -> one LSTM layer (32) -> linear layer to the vocabulary (5,000); every parameter drawn
from N(0, 0.1) (``init_matrix``: ``tf.random_normal(shape, stddev=0.1)``). Sequences in the
synthetic experiment are 20 tokens long and decoding starts from token 0, which is also an
ordinary vocabulary token: BOS is only ever fed, never predicted, so that is harmless.

Decoder state (:class:`LSTMState`): the current ``(h, c)`` plus the ids fed so far and a
cache of the ``(h, c)`` after every token fed by :meth:`RecurrentGenerator.encode`. That
cache is what lets :meth:`RecurrentGenerator.slice_state` branch rollouts off any prefix
without re-running the LSTM; :meth:`~RecurrentGenerator.step` does not extend it (sampling
10,000 sequences would otherwise keep every intermediate state alive). The first slice
that reaches past the cache recomputes the recurrence (no output layer) over the remaining
stored ids once and memoises it in the state. So every slice of every state works: slices
of an encoded batch and ``length=None`` slices are free, and a state built by stepping
(e.g. the rollout code's ``sample_with_state``) costs one pass of LSTM cell updates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gan_writer.models.base import CausalGenerator

__all__ = ["LSTMState", "RecurrentGenerator", "LSTMGenerator"]


@dataclass
class LSTMState:
    """Decoder state of the recurrent backends. No tensor of it is ever written in place;
    only :meth:`RecurrentGenerator.slice_state` may complete its history cache.

    Attributes:
        h, c: ``(B, H)`` hidden and cell state after the last fed token.
        tokens: ``(B, n)`` int64, every token fed so far, BOS first (``n >= 1``).
        history_h, history_c: ``(B, m, H)`` the ``h``/``c`` after each of the first ``m``
            fed tokens (``m <= n``; position ``t - 1`` holds the state after ``t`` tokens),
            or None when no cache is kept.
    """

    h: torch.Tensor
    c: torch.Tensor
    tokens: torch.Tensor
    history_h: torch.Tensor | None = None
    history_c: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Number of fed tokens, BOS included."""
        return self.tokens.size(1)

    @property
    def cached(self) -> int:
        """Number of leading positions whose ``(h, c)`` is cached."""
        return 0 if self.history_h is None else self.history_h.size(1)


class RecurrentGenerator(CausalGenerator):
    """Shared ``encode``/``step``/``slice_state`` of single-layer LSTM backends.

    Subclasses define how a token becomes gate pre-activations (:meth:`_input_gates`), the
    recurrence (:meth:`_cell`) and the output layer (:meth:`_project`), and set
    ``vocab_size``, ``hidden_dim`` and the special ids.
    """

    hidden_dim: int

    # ---- to implement -------------------------------------------------------------------
    def _input_gates(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` ids -> ``(B, n, 4H)`` input part of the gate pre-activations (bias included)."""
        raise NotImplementedError

    def _cell(self, gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``gates_x (B, 4H)``, ``h, c (B, H)`` -> new ``(h, c)``."""
        raise NotImplementedError

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        """``(..., H)`` hidden states -> ``(..., V)`` logits."""
        raise NotImplementedError

    # ---- shared machinery ----------------------------------------------------------------
    def _zeros(self, batch_size: int) -> torch.Tensor:
        p = next(self.parameters())
        return torch.zeros(batch_size, self.hidden_dim, dtype=p.dtype, device=p.device)

    def _run(
        self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feed ``tokens`` ``(B, n)`` from state ``(h, c)``.

        Returns ``(h, c, hs, cs)``: the final state ``(B, H)`` and the states after each
        token ``(B, n, H)``.
        """
        gates_x = self._input_gates(tokens)
        hs, cs = [], []
        for t in range(tokens.size(1)):
            h, c = self._cell(gates_x[:, t], h, c)
            hs.append(h)
            cs.append(c)
        return h, c, torch.stack(hs, 1), torch.stack(cs, 1)

    def _with_bos(self, ids: torch.Tensor | None, batch_size: int | None) -> torch.Tensor:
        n = ids.size(0) if ids is not None else batch_size
        if n is None:
            raise ValueError("encode needs ids or batch_size")
        bos = torch.full((n, 1), self.bos_token_id, dtype=torch.long, device=self.device)
        return bos if ids is None else torch.cat([bos, ids.long().to(bos.device)], dim=1)

    def _hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``(B, T)`` ids -> ``(B, T, H)`` states after BOS + ``ids[:, :t]``."""
        tokens = self._with_bos(ids[:, :-1], ids.size(0))
        zeros = self._zeros(ids.size(0))
        return self._run(tokens, zeros, zeros)[2]

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T) -> (B, T, V)``; ``[:, t]`` predicts ``ids[:, t]`` from BOS + ``ids[:, :t]``.

        Padding comes after the real tokens and the model is causal, so the mask is unused.
        """
        return self._project(self._hidden_states(ids))

    def encode(self, ids: torch.Tensor | None, batch_size: int | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Feed BOS + ``ids`` ``(B, L)`` (or BOS alone for ``batch_size`` rows).

        Returns:
            ``(logits (B, V), state)``; the state caches ``(h, c)`` after all ``1 + L`` tokens.

        Raises:
            ValueError: if both ``ids`` and ``batch_size`` are None.
        """
        if ids is not None and ids.size(1) == 0:
            batch_size, ids = ids.size(0), None
        tokens = self._with_bos(ids, batch_size)
        zeros = self._zeros(tokens.size(0))
        h, c, hs, cs = self._run(tokens, zeros, zeros)
        return self._project(h), LSTMState(h, c, tokens, hs, cs)

    def step(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """Feed ``tokens`` ``(B,)``; returns ``(logits (B, V), new state)``.

        The input state is left unchanged; the new one shares its history cache (which
        thus does not cover the new token; see the module docstring).
        """
        tokens = tokens.view(-1, 1).long()
        h, c = self._cell(self._input_gates(tokens)[:, 0], state.h, state.c)
        new = LSTMState(h, c, torch.cat([state.tokens, tokens], 1), state.history_h, state.history_c)
        return self._project(h), new

    def _fill_history(self, state: LSTMState) -> tuple[torch.Tensor, torch.Tensor]:
        """Complete ``state``'s history cache to all fed tokens (a memo: the attributes are
        replaced by new tensors, no tensor is written in place) and return it."""
        m = state.cached
        if m < state.length:
            h0 = state.history_h[:, m - 1] if m else self._zeros(state.tokens.size(0))
            c0 = state.history_c[:, m - 1] if m else torch.zeros_like(h0)
            _, _, hs, cs = self._run(state.tokens[:, m:], h0, c0)
            state.history_h = hs if m == 0 else torch.cat([state.history_h, hs], 1)
            state.history_c = cs if m == 0 else torch.cat([state.history_c, cs], 1)
        return state.history_h, state.history_c

    def slice_state(self, state: LSTMState, length: int | None = None, repeats: int = 1) -> LSTMState:
        """The state after the first ``length`` fed tokens (BOS counts), rows repeated.

        Row ``b`` becomes rows ``b * repeats ... b * repeats + repeats - 1``. With
        ``repeats == 1`` the (truncated) history cache is kept; with ``repeats > 1`` it is
        dropped to save memory (rollouts only decode forward from such states; a later
        shorter slice recomputes from the stored ids). Results are new tensors or views.
        The input state keeps its meaning; only its history cache may be completed (see
        the module docstring).

        Raises:
            ValueError: if ``length`` is outside ``1 .. state.length`` or ``repeats < 1``.
        """
        n = state.length
        length = n if length is None else int(length)
        if not 1 <= length <= n:
            raise ValueError(f"slice_state length must be in 1..{n} (fed tokens, BOS included), got {length}")
        if repeats < 1:
            raise ValueError(f"slice_state repeats must be >= 1, got {repeats}")
        hist_h, hist_c = state.history_h, state.history_c
        m = state.cached
        if length == n:
            h, c = state.h, state.c
            if m > length:  # cannot happen for states built here; kept for safety
                hist_h, hist_c = hist_h[:, :length], hist_c[:, :length]
        elif length <= m:
            h, c = hist_h[:, length - 1], hist_c[:, length - 1]
            hist_h, hist_c = hist_h[:, :length], hist_c[:, :length]
        else:  # past the cache: fill it once for every fed token, then read it
            hist_h, hist_c = self._fill_history(state)
            h, c = hist_h[:, length - 1], hist_c[:, length - 1]
            hist_h, hist_c = hist_h[:, :length], hist_c[:, :length]
        tokens = state.tokens[:, :length]
        if repeats == 1:
            return LSTMState(h, c, tokens, hist_h, hist_c)
        rep = lambda x: x.repeat_interleave(repeats, 0)  # noqa: E731
        return LSTMState(rep(h), rep(c), rep(tokens))


class LSTMGenerator(RecurrentGenerator):
    """The SeqGAN generator: ``nn.Embedding`` -> ``nn.LSTM`` (1 layer) -> ``nn.Linear``.

    Teacher forcing (:meth:`logits`, used by MLE and policy-gradient losses) runs the fused
    ``nn.LSTM`` over the whole sequence; decoding (``encode``/``step``) applies the same
    weights one step at a time with PyTorch's LSTM equations (gate order i, f, g, o), so
    both agree to float rounding.

    Args:
        vocab_size: ``V`` (SeqGAN: 5,000).
        emb_dim, hidden_dim: embedding and LSTM sizes (SeqGAN: 32, 32).
        bos_token_id: fed first (SeqGAN: the start token 0, also a regular token).
        eos_token_id: ends a sample; None for fixed-length data (the oracle setting).
        pad_token_id: written after EOS; defaults to ``eos_token_id``, else ``bos_token_id``.
        init_std: standard deviation of the N(0, init_std) initialisation of every weight
            (SeqGAN: 0.1). SeqGAN has one bias per gate; PyTorch has two (``b_ih + b_hh``),
            so ``bias_ih`` is drawn and ``bias_hh`` starts at zero (same distribution).

    Raises:
        ValueError: if a special id is outside ``0 .. V-1`` or a size is < 1.
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        bos_token_id: int = 0,
        eos_token_id: int | None = None,
        pad_token_id: int | None = 0,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        if min(vocab_size, emb_dim, hidden_dim) < 1:
            raise ValueError(f"LSTMGenerator sizes must be >= 1, got V={vocab_size}, emb={emb_dim}, hidden={hidden_dim}")
        if pad_token_id is None:
            pad_token_id = eos_token_id if eos_token_id is not None else bos_token_id
        for name, value in (("bos", bos_token_id), ("eos", eos_token_id), ("pad", pad_token_id)):
            if value is not None and not 0 <= int(value) < vocab_size:
                raise ValueError(f"{name}_token_id={value} is outside the vocabulary 0..{vocab_size - 1}")
        self.vocab_size, self.emb_dim, self.hidden_dim = int(vocab_size), int(emb_dim), int(hidden_dim)
        self.bos_token_id, self.pad_token_id = int(bos_token_id), int(pad_token_id)
        self.eos_token_id = None if eos_token_id is None else int(eos_token_id)
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.reset_parameters(init_std)

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.1) -> None:
        """Draw every weight from N(0, std) (SeqGAN ``init_matrix``); ``bias_hh`` set to 0."""
        for name, p in self.named_parameters():
            if name.startswith("lstm.bias_hh"):
                p.zero_()
            else:
                p.normal_(0.0, std)

    @classmethod
    def from_spec(cls, spec: dict) -> "LSTMGenerator":
        """Rebuild (untrained weights) from :meth:`spec`; load the state dict afterwards."""
        keys = ("vocab_size", "emb_dim", "hidden_dim", "bos_token_id", "eos_token_id", "pad_token_id")
        return cls(**{k: spec[k] for k in keys})

    def spec(self) -> dict:
        return {
            "backend": "lstm", "vocab_size": self.vocab_size, "emb_dim": self.emb_dim,
            "hidden_dim": self.hidden_dim, "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id,
        }

    # ---- pieces for RecurrentGenerator ----------------------------------------------------
    def _input_gates(self, tokens: torch.Tensor) -> torch.Tensor:
        bias = self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0
        return nn.functional.linear(self.embedding(tokens), self.lstm.weight_ih_l0, bias)

    def _cell(self, gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, g, o = (gates_x + h @ self.lstm.weight_hh_l0.t()).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)

    def linear_head(self, ids, attention_mask=None):
        """The teacher-forced states and ``self.out``'s weight and bias (see
        :meth:`CausalGenerator.linear_head`); None when ``self.out`` is not a plain ``nn.Linear``
        (e.g. wrapped by an adapter)."""
        if type(self.out) is not nn.Linear:
            return None
        return self._hidden_states(ids), self.out.weight, self.out.bias

    def _hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Fused ``nn.LSTM`` over BOS + ``ids[:, :-1]``: ``(B, T)`` -> ``(B, T, H)``, contiguous.

        ``nn.LSTM`` returns a transposed view; made contiguous, the output layer is one
        ``addmm`` with its bias instead of a matmul and a separate pass adding the bias over the
        ``(B, T, V)`` logits (issue 18: ~5% of an MLE step at the SeqGAN sizes). For hidden
        sizes up to 128 the logits and every gradient are bit-identical to the view's
        (``tests/test_lstm.py``), so runs made before stay reproducible; larger ones round
        differently (~1e-7).
        """
        tokens = self._with_bos(ids[:, :-1], ids.size(0))
        return self.lstm(self.embedding(tokens))[0].contiguous()

    def extra_repr(self) -> str:
        return f"bos={self.bos_token_id}, eos={self.eos_token_id}, pad={self.pad_token_id}"
