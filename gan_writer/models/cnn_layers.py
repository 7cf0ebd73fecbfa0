"""The layers of the SeqGAN CNN discriminator (:class:`gan_writer.models.discriminator.CNNDiscriminator`):
SeqGAN's two-matrix highway and TextGAN-PyTorch's one-matrix one (Srivastava et al. 2015,
"Highway Networks"), and the ``impl="fast"`` convolution + max-over-time (one strided window
view and one ``addmm`` per filter width, with a hand-written backward; issue 18)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["Highway", "SingleHighway", "windowed_conv_max", "WINDOW_CHUNK_BYTES"]


class Highway(nn.Module):
    """One highway layer (Srivastava et al. 2015) as in the SeqGAN code::

        t = sigmoid(W_t x + b_t + gate_bias);  g = relu(W_h x + b_h);  y = t * g + (1 - t) * x
    """

    def __init__(self, size: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        self.gate_bias = float(gate_bias)
        for lin in (self.transform, self.gate):
            nn.init.xavier_uniform_(lin.weight)  # TF get_variable default (glorot uniform)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, size) -> (B, size)``."""
        t = torch.sigmoid(self.gate(x) + self.gate_bias)
        g = F.relu(self.transform(x))
        return t * g + (1.0 - t) * x


class SingleHighway(nn.Module):
    """TextGAN-PyTorch's highway (``models/discriminator.py``, ``CNNDiscriminator.get_feature``):
    one matrix serves as both gate and transform::

        h = W x + b;  t = sigmoid(h + gate_bias);  y = t * relu(h) + (1 - t) * x

    ``size * size + size`` parameters, half of :class:`Highway`'s, and half its multiply-adds.
    TextGAN has no gate bias (``gate_bias=0``). The weight is initialised like
    :class:`Highway`'s (Glorot uniform, bias PyTorch's default), not with TextGAN's
    ``dis_init``, so that the two highways differ only in architecture.
    """

    def __init__(self, size: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.gate_bias = float(gate_bias)
        nn.init.xavier_uniform_(self.linear.weight)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, size) -> (B, size)``."""
        h = self.linear(x)
        t = torch.sigmoid(h + self.gate_bias) if self.gate_bias else torch.sigmoid(h)
        return t * F.relu(h) + (1.0 - t) * x


#: :func:`windowed_conv_max` without gradients: most bytes of one width's window copy at once.
WINDOW_CHUNK_BYTES = 32 * 2**20


def _windows(x: Tensor, k: int) -> Tensor:
    """The ``P = L - k + 1`` windows of ``k`` consecutive rows of contiguous ``x`` ``(B, L, E)``,
    copied to ``(B * P, k * E)`` (taps major): one strided view, then the reshape's copy."""
    b, length, e = x.shape
    p = length - k + 1
    return x.as_strided((b, p, k * e), (length * e, e, 1), x.storage_offset()).reshape(b * p, k * e)


class _WindowMax(torch.autograd.Function):
    """``max over P of (windows(x, k) @ weight.T + bias)`` for one width, ``(B, n)``.

    Saves ``x`` and the argmax (not the window copy, recomputed in backward); the input
    gradient is folded back with ``k`` shifted slice-adds instead of ``as_strided``'s generic
    backward (an ``index_add``). Checked with ``gradcheck`` (``tests/test_discriminator.py``).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, k: int) -> Tensor:
        b, length, _ = x.shape
        y = torch.addmm(bias, _windows(x, k), weight.t())
        values, idx = y.view(b, length - k + 1, -1).max(dim=1)
        ctx.save_for_backward(x, weight, idx)
        ctx.k = k
        return values

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight, idx = ctx.saved_tensors
        k = ctx.k
        b, length, e = x.shape
        p = length - k + 1
        grad_y = grad.new_zeros(b, p, grad.shape[1]).scatter_(1, idx.unsqueeze(1), grad.unsqueeze(1)).view(b * p, -1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = grad_y.t().mm(_windows(x, k))
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        if ctx.needs_input_grad[0]:
            grad_win = grad_y.mm(weight).view(b, p, k, e)
            grad_x = x.new_zeros(b, length, e)
            for j in range(k):
                grad_x[:, j:j + p] += grad_win[:, :, j]
        return grad_x, grad_w, grad_b, None


def windowed_conv_max(x: Tensor, convs: Sequence[nn.Conv1d], chunk_bytes: int = WINDOW_CHUNK_BYTES) -> Tensor:
    """Max over time of each ``Conv1d`` in ``convs`` applied to ``x``, ReLU after the max:
    the pooled features of :class:`CNNDiscriminator` computed without ``conv1d``.

    For a width ``k`` the ``P = L - k + 1`` windows of ``k`` consecutive embeddings are
    contiguous in ``x``, so they are one strided view ``(B, P, k * E)`` of it, copied once,
    and the convolution is one ``addmm`` with the weight laid out tap-major ``(n, k * E)``
    (:class:`_WindowMax`). ``relu(max(y)) == max(relu(y))``, so the ReLU runs on ``(B, n)``
    instead of ``(B, n, P)``. Same function as ``conv1d``; the sums are accumulated in
    another order (float32 difference ~1e-6 on the logits). The max's gradient goes to one
    position where ``amax`` (the reference) splits it among exactly tied windows; ties arise
    only between identical windows, e.g. all-padding ones, whose zero inputs get no gradient.

    Memory: one width's window copy (``P * k * E`` floats per row) lives at a time; with
    gradients ``x`` and the argmax are kept, not the copies (recomputed in backward); without
    gradients rows are taken in chunks so that one copy stays under ``chunk_bytes``.

    Why not one matmul for all widths (filters zero-padded to the widest): with SeqGAN's
    widths 1..10, 15, 20 at ``L = 20`` that is 5.8x the multiply-adds, and measured 1.9x
    slower than ``conv1d`` on a CPU (``benchmarks/bench_adversarial.py --units cnn``).

    Args:
        x: ``(B, L, E)`` embeddings (any strides; made contiguous).
        convs: ``Conv1d(E, n_i, k_i)`` modules with ``k_i <= L``, no padding/stride/dilation.
        chunk_bytes: without gradients, the most bytes of windows copied at once.

    Returns:
        ``(B, sum n_i)`` pooled features, ReLU applied.

    Raises:
        ValueError: if a filter is wider than ``L``.
    """
    x = x.contiguous()
    b, length, e = x.shape
    grad = torch.is_grad_enabled() and (x.requires_grad or any(c.weight.requires_grad for c in convs))
    pooled = []
    for conv in convs:
        k, n = conv.kernel_size[0], conv.out_channels
        if k > length:
            raise ValueError(f"filter width {k} exceeds the sequence length {length}")
        weight = conv.weight.transpose(1, 2).reshape(n, k * e)  # (n, k * E): taps major, as the windows
        if grad:
            pooled.append(_WindowMax.apply(x, weight, conv.bias, k))
            continue
        rows = max(1, chunk_bytes // ((length - k + 1) * k * e * x.element_size()))
        parts = [_WindowMax.apply(x[i:i + rows], weight, conv.bias, k) for i in range(0, b, rows)]
        pooled.append(parts[0] if len(parts) == 1 else torch.cat(parts))
    return F.relu(torch.cat(pooled, dim=1))
