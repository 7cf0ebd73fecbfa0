"""The SeqGAN synthetic-data oracle: a fixed random LSTM that defines the "true" data
distribution of the NLL-oracle benchmark (Yu et al. 2017, SeqGAN, section 4;
LantaoYu/SeqGAN ``target_lstm.py``).

Parameters, in the order of the published ``save/target_params_py3.pkl`` (a pickled list
of 15 float32 arrays; V = 5,000, E = 32, H = 32)::

    E (V, E); Wi, Ui (E, H), (H, H), bi (H); Wf, Uf, bf; Wog, Uog, bog; Wc, Uc, bc;
    Wo (H, V); bo (V)

Step, with input embedding x (B, E) and previous state (h, c), both starting at zero::

    i = sigmoid(x Wi + h Ui + bi)     f = sigmoid(x Wf + h Uf + bf)
    o = sigmoid(x Wog + h Uog + bog)  c~ = tanh(x Wc + h Uc + bc)
    c = f * c_prev + i * c~           h = o * tanh(c)           logits = h Wo + bo

The first input is the embedding of the start token 0; every sequence is 20 tokens and has
no EOS. NLL-oracle (nats per token) is the mean of ``-oracle.log_probs`` over sequences a
generator samples (:func:`gan_writer.metrics.nll.nll_oracle`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gan_writer.models.lstm import RecurrentGenerator

__all__ = ["PARAM_NAMES", "OracleLSTM"]

#: Names of the 15 arrays of ``target_params_py3.pkl``, in file order.
PARAM_NAMES = ("E", "Wi", "Ui", "bi", "Wf", "Uf", "bf", "Wog", "Uog", "bog", "Wc", "Uc", "bc", "Wo", "bo")
_GATES = ("i", "f", "og", "c")  # order of the stacked gate columns


def _shapes(vocab_size: int, emb_dim: int, hidden_dim: int) -> dict[str, tuple[int, ...]]:
    V, E, H = vocab_size, emb_dim, hidden_dim
    shapes = {"E": (V, E), "Wo": (H, V), "bo": (V,)}
    for g in _GATES:
        shapes.update({f"W{g}": (E, H), f"U{g}": (H, H), f"b{g}": (H,)})
    return shapes


class OracleLSTM(RecurrentGenerator):
    """The oracle LSTM as a frozen generator backend (``log_probs``, ``sample``, ...).

    Weights are ``nn.Parameter``s with ``requires_grad=False`` named as in
    :data:`PARAM_NAMES` (so ``state_dict`` and ``.to(device)`` work and no optimizer
    updates them). Special ids are fixed: BOS 0 (the SeqGAN start token), PAD 0, no EOS.

    Args:
        vocab_size, emb_dim, hidden_dim: sizes (SeqGAN: 5,000, 32, 32).
        params: 15 arrays/tensors in :data:`PARAM_NAMES` order; None gives zeros (to be
            filled by ``load_state_dict``, see :meth:`from_spec`).
        source: free-text provenance stored in :meth:`spec` (file name or seed).

    Raises:
        ValueError: if ``params`` does not have the layout above.
    """

    bos_token_id = 0
    eos_token_id = None
    pad_token_id = 0

    def __init__(
        self,
        vocab_size: int = 5000,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        params: Sequence[np.ndarray | torch.Tensor] | None = None,
        source: str = "",
    ) -> None:
        super().__init__()
        self.vocab_size, self.emb_dim, self.hidden_dim = int(vocab_size), int(emb_dim), int(hidden_dim)
        self.source = source
        shapes = _shapes(self.vocab_size, self.emb_dim, self.hidden_dim)
        if params is not None and len(params) != len(PARAM_NAMES):
            raise ValueError(f"OracleLSTM needs {len(PARAM_NAMES)} arrays {PARAM_NAMES}, got {len(params)}")
        for k, name in enumerate(PARAM_NAMES):
            if params is None:
                value = torch.zeros(shapes[name])
            else:
                value = torch.as_tensor(np.asarray(params[k], dtype=np.float32)).clone()
                if tuple(value.shape) != shapes[name]:
                    raise ValueError(
                        f"oracle parameter #{k} {name} has shape {tuple(value.shape)}, expected {shapes[name]} "
                        f"(V={vocab_size}, E={emb_dim}, H={hidden_dim})"
                    )
            self.register_parameter(name, nn.Parameter(value, requires_grad=False))
        self.eval()

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_pickle(cls, path: str | Path) -> "OracleLSTM":
        """Load the SeqGAN oracle from ``target_params_py3.pkl`` (sizes read from the arrays).

        The file is unpickled admitting only numpy arrays: nothing in it runs.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: naming the file, if it cannot be unpickled or is not a list of 15
                arrays with the layout of the module docstring.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"oracle parameter file {path} not found (SeqGAN's save/target_params_py3.pkl)")
        from gan_writer.safe_load import UnsafeFileError, load_numpy_pickle

        try:
            params = load_numpy_pickle(path)  # numpy arrays only; also reads SeqGAN's Python 2 pickle
        except UnsafeFileError:
            raise
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f"{path} is not a readable pickle of oracle parameters: {err}") from err
        if not isinstance(params, (list, tuple)) or len(params) != len(PARAM_NAMES):
            got = f"a {type(params).__name__} of {len(params)}" if hasattr(params, "__len__") else type(params).__name__
            raise ValueError(
                f"{path} must hold a list of {len(PARAM_NAMES)} float arrays {PARAM_NAMES} "
                f"(SeqGAN target_params_py3.pkl layout), got {got}"
            )
        try:
            arrays = [np.asarray(p, dtype=np.float32) for p in params]
            return cls(arrays[0].shape[0], arrays[0].shape[1], arrays[1].shape[1], arrays, source=str(path))
        except (ValueError, TypeError, IndexError) as err:
            raise ValueError(f"{path} does not have the SeqGAN oracle layout: {err}") from err

    @classmethod
    def random(cls, seed: int, vocab_size: int = 5000, emb_dim: int = 32, hidden_dim: int = 32) -> "OracleLSTM":
        """A fresh oracle with every parameter from N(0, 1), as SeqGAN's ``TARGET_LSTM``
        ``init_matrix`` (``tf.random_normal(shape, stddev=1.0)``); same seed, same oracle."""
        gen = torch.Generator().manual_seed(int(seed))
        shapes = _shapes(vocab_size, emb_dim, hidden_dim)
        params = [torch.randn(shapes[name], generator=gen) for name in PARAM_NAMES]
        return cls(vocab_size, emb_dim, hidden_dim, params, source=f"random(seed={int(seed)})")

    @classmethod
    def from_spec(cls, spec: dict) -> "OracleLSTM":
        """Rebuild with zero weights from :meth:`spec`; load the state dict afterwards."""
        return cls(spec["vocab_size"], spec["emb_dim"], spec["hidden_dim"], source=spec.get("source", ""))

    def spec(self) -> dict:
        return {
            "backend": "oracle", "vocab_size": self.vocab_size, "emb_dim": self.emb_dim,
            "hidden_dim": self.hidden_dim, "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id, "source": self.source,
        }

    # ---- the README step ------------------------------------------------------------------
    def _input_gates(self, tokens: torch.Tensor) -> torch.Tensor:
        W = torch.cat([getattr(self, f"W{g}") for g in _GATES], dim=1)  # (E, 4H)
        b = torch.cat([getattr(self, f"b{g}") for g in _GATES])  # (4H,)
        return nn.functional.embedding(tokens, self.E) @ W + b

    def _cell(self, gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U = torch.cat([getattr(self, f"U{g}") for g in _GATES], dim=1)  # (H, 4H)
        i, f, o, g = (gates_x + h @ U).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.Wo + self.bo

    # ---- scoring and sampling --------------------------------------------------------------
    def log_probs(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Per-token log-likelihood under the oracle, ``(B, T) -> (B, T)`` nats, 0 at padding
        (at ``temperature``, > 0, as :meth:`CausalGenerator.log_probs`).

        Same values as the base implementation, but scored one position at a time so that
        no ``(B, T, V)`` tensor is built (10,000 x 20 x 5,000 floats would be 4 GB).
        """
        with torch.no_grad():
            hs = self._hidden_states(ids)  # (B, T, H)
            out = torch.empty(ids.shape, dtype=torch.float32, device=hs.device)
            for t in range(ids.size(1)):
                logits = self._project(hs[:, t]).float() / temperature
                out[:, t] = logits.gather(-1, ids[:, t : t + 1].long()).squeeze(-1) - logits.logsumexp(-1)
        if attention_mask is not None:
            out = out * attention_mask.to(out.dtype)
        return out

    @torch.no_grad()
    def sample_dataset(self, n: int, seq_len: int = 20, seed: int = 88, batch_size: int = 2500) -> torch.Tensor:
        """``n`` oracle sequences ``(n, seq_len)`` int64, drawn from the full distribution
        with ``torch.Generator().manual_seed(seed)`` in chunks of ``batch_size`` rows (the
        same seed and sizes always give the same tensor; on CPU)."""
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        chunks = [self.sample(min(batch_size, n - i), seq_len, generator=gen) for i in range(0, n, batch_size)]
        return torch.cat(chunks) if chunks else torch.zeros(0, seq_len, dtype=torch.long)

    def train(self, mode: bool = True) -> "OracleLSTM":
        """The oracle has nothing to train; it stays in eval mode."""
        return super().train(False)

    def extra_repr(self) -> str:
        return f"V={self.vocab_size}, E={self.emb_dim}, H={self.hidden_dim}, source={self.source!r}"
