"""The interface every generator backend implements (transformer, LSTM, oracle).

A backend is a plain ``nn.Module`` language model over token ids that *never include BOS*:
a sequence ``y`` of shape ``(B, T)`` is the text's tokens, then EOS, then padding, and the
backend conditions on a BOS token that it prepends itself. Every stage (MLE, discriminator
pretraining, adversarial training), the rollout code and the metrics use only the methods
below, so a new backend works everywhere once it implements five of them:

* :meth:`logits` — teacher-forced next-token logits ``(B, T, V)``;
* :meth:`encode` — feed BOS plus a prefix, return next-token logits and a decoder state;
* :meth:`step` — feed one token per row, return the next logits and the new state;
* :meth:`slice_state` — a copy of a state truncated to its first tokens and repeated per
  row, which is how rollouts branch many completions off one shared prefix;
* :meth:`spec` — a JSON-able description from which :func:`gan_writer.models.build_generator_from_spec`
  rebuilds the module (saved in every checkpoint).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gan_writer.models.linear_ce import linear_log_probs
from gan_writer.sampling import decode


class CausalGenerator(nn.Module):
    """Base class of generator backends; see the module docstring for the contract.

    Attributes:
        vocab_size: size of the output distribution ``V``.
        bos_token_id: fed first; never appears in ``ids``.
        eos_token_id: ends a sequence (``None`` for fixed-length models such as the oracle).
        pad_token_id: fills positions after EOS (may equal ``eos_token_id``; masks, not ids,
            say what is padding).
    """

    vocab_size: int
    bos_token_id: int
    eos_token_id: int | None
    pad_token_id: int

    # ---- to implement -------------------------------------------------------------------
    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits: ``(B, T) -> (B, T, V)``; ``[:, t]`` predicts ``ids[:, t]``."""
        raise NotImplementedError

    def encode(self, ids: torch.Tensor | None, batch_size: int | None = None) -> tuple[torch.Tensor, Any]:
        """Feed BOS plus ``ids`` ``(B, L)`` (``L`` may be 0 or ``ids`` None with ``batch_size``).

        Returns ``(logits (B, V), state)``: the distribution of the next token and the
        decoder state holding ``1 + L`` fed tokens.
        """
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed ``tokens`` ``(B,)``; return ``(logits (B, V), new_state)``.

        The input state may be updated in place; use :meth:`slice_state` to keep a copy.
        """
        raise NotImplementedError

    def slice_state(self, state: Any, length: int | None = None, repeats: int = 1) -> Any:
        """A new state holding the first ``length`` fed tokens (BOS counts), rows repeated.

        Row ``b`` of the input becomes rows ``b * repeats ... b * repeats + repeats - 1``
        (``repeat_interleave`` order). ``length=None`` keeps every fed token. The input
        state is not modified.
        """
        raise NotImplementedError

    def spec(self) -> dict:
        """JSON-able description for :func:`gan_writer.models.build_generator_from_spec`."""
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------
    #: longest input (BOS included) the model can take; None when unbounded (LSTMs)
    max_positions: int | None = None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def log_probs(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Per-token log-probabilities of ``ids`` under the (tempered) model.

        The one place where the tempered gather is written: the policy that samples at
        ``temperature`` is ``softmax(logits / temperature)``, so policy gradients, PPO ratios
        and KL penalties of a run sampled at that temperature all call this with it.

        Args:
            ids: ``(B, T)`` token ids (no BOS).
            attention_mask: ``(B, T)`` 1 for real tokens (EOS included), 0 for padding.
            temperature: softmax temperature (> 0; 1 = the model itself, as for NLL).

        Returns:
            ``(B, T)`` float32: ``log p_τ(ids[:, t] | BOS, ids[:, :t])`` in nats, 0 at padding.
            Differentiable (no ``torch.no_grad`` here).

        Raises:
            ValueError: if ``temperature <= 0``.
        """
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        head = self.linear_head(ids, attention_mask)
        if head is not None and head[0].dtype == torch.float32 and not torch.is_autocast_enabled(head[0].device.type):
            h, weight, bias = head  # chunked in the cache, never the whole (B, T, V) logits (issue 18)
            lp = linear_log_probs(h.flatten(0, 1), weight, bias, ids.flatten(), 1.0 / temperature).view_as(ids)
        else:
            logits = self._project_head(head) if head is not None else self.logits(ids, attention_mask)
            logits = logits.float()
            if temperature != 1.0:
                logits = logits / temperature
            # = log_softmax(-1).gather(ids), bit for bit, and faster (fused log_softmax + NLL kernels)
            lp = -nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view_as(ids)
        if attention_mask is not None:
            lp = lp * attention_mask.to(lp.dtype)
        return lp

    def linear_head(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        """``(hidden (B, T, H), weight (V, H), bias (V,) or None)`` when :meth:`logits` is one
        linear layer over hidden states, so that :meth:`log_probs` can compute it chunk by
        chunk (:func:`~gan_writer.models.linear_ce.linear_log_probs`); None (the default):
        :meth:`log_probs` takes the whole :meth:`logits`."""
        return None

    @staticmethod
    def _project_head(head: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        h, weight, bias = head
        return nn.functional.linear(h, weight, bias)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        prompt_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``n`` sequences with the decoder state (KV cache or recurrent state).

        Each row stops at EOS and is padded with ``pad_token_id`` after it. Sampling is
        from the full distribution unless ``top_k``/``top_p`` are set (SeqGAN sampling and
        the metrics use the full distribution).

        Args:
            n: number of sequences ``B``.
            max_new_tokens: tokens drawn after the prompt.
            temperature, top_k, top_p: see :func:`gan_writer.sampling.sample_from_logits`.
            prompt_ids: ``(P,)`` one prompt shared by all rows, or ``(n, P)``.
            generator: ``torch.Generator`` for reproducible draws.

        Returns:
            ``(n, P + max_new_tokens)`` int64 ids: the prompt followed by the sample
            (shorter when every row ended before ``max_new_tokens``).

        Raises:
            ValueError: if ``n < 1``, ``max_new_tokens < 1``, ``prompt_ids`` has a batch size
                other than ``n``, or BOS + prompt + ``max_new_tokens`` exceed
                :attr:`max_positions`.
        """
        if n < 1 or max_new_tokens < 1:
            raise ValueError(f"sample needs n >= 1 and max_new_tokens >= 1, got n={n}, max_new_tokens={max_new_tokens}")
        prompt_len = 0 if prompt_ids is None else prompt_ids.size(-1)
        if self.max_positions is not None and 1 + prompt_len + max_new_tokens - 1 > self.max_positions:
            room = self.max_positions - prompt_len
            advice = (f"draw at most {room} tokens" if room >= 1 else
                      f"shorten the prompt to at most {self.max_positions - 1} tokens (it leaves no room for a new one)")
            raise ValueError(
                f"a prompt of {prompt_len} tokens plus {max_new_tokens} new tokens does not fit the model's "
                f"{self.max_positions} positions (n_positions); {advice}"
            )
        if prompt_ids is not None:
            prompt_ids = prompt_ids.to(self.device)
            if prompt_ids.dim() == 1:
                prompt_ids = prompt_ids.unsqueeze(0).expand(n, -1)
            if prompt_ids.size(0) != n:
                raise ValueError(f"prompt_ids has {prompt_ids.size(0)} rows but n={n}")
            if prompt_ids.size(1) == 0:
                prompt_ids = None
        logits, state = self.encode(prompt_ids, batch_size=n)
        new = decode(
            self.step, state, logits, max_new_tokens,
            eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )
        return new if prompt_ids is None else torch.cat([prompt_ids, new], dim=1)
