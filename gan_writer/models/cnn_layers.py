"""The layers of the SeqGAN CNN discriminator (:class:`gan_writer.models.discriminator.CNNDiscriminator`):
SeqGAN's two-matrix highway and TextGAN-PyTorch's one-matrix one (Srivastava et al. 2015,
"Highway Networks"), and the ``impl="fast"`` convolution + max-over-time (one strided window
view and one ``addmm`` per filter width, with a hand-written backward; issue 18), and the
highway's linear maps with their weight gradient summed over row chunks (:func:`linear`)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["Highway", "SingleHighway", "linear", "windowed_conv_max", "first_argmax", "WINDOW_CHUNK_BYTES",
           "WGRAD_ROWS"]

#: The fast CNN's highway: rows per weight-gradient product (:func:`linear`), and the most rows split so.
WGRAD_ROWS, WGRAD_MAX_ROWS = 32, 96


class _Linear(torch.autograd.Function):
    """``x @ weight.T + bias`` whose weight gradient is a sum of ``x[c].T``-products over
    chunks ``c`` of ``rows`` rows. ``apply(x, weight, bias, rows)``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, rows: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.rows = rows
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad.mm(weight) if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            r = ctx.rows
            grad_w = grad[:r].t().mm(x[:r])
            for i in range(r, x.shape[0], r):
                grad_w.addmm_(grad[i:i + r].t(), x[i:i + r])
        grad_b = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None


def linear(x: Tensor, layer: nn.Linear, wgrad_rows: int = 0) -> Tensor:
    """``layer(x)`` for ``x`` ``(B, in)`` -> ``(B, out)``; with ``wgrad_rows > 0`` and
    ``wgrad_rows < B <= WGRAD_MAX_ROWS`` the weight gradient is summed over chunks of
    ``wgrad_rows`` rows (a hand-written backward, not twice differentiable).

    Why (issue 18): MKL 2024.2's sgemm (torch 2.13, one AVX-512 thread) computes the SeqGAN
    highway's weight gradient ``(1720, B) @ (B, 1720)`` at 25-40 G multiply-adds/s for ``B``
    from 48 to 96, against 60-76 G/s for ``B <= 40`` and from ``B >= 112`` (erratic run to run).
    A D step of 32 real + 32 generated rows in two chunks of 32 groups the sum as the
    ``impl="reference"`` path's two calls do (real, then generated): a D epoch 2.9% faster
    (``benchmarks/bench_adversarial.py --units d_epoch``, the ``one-product`` row;
    docs/discriminators.md). Values are those of ``layer(x)``; gradients differ from one
    product's by float rounding only (``tests/test_discriminator.py``).
    """
    chunked = 0 < wgrad_rows < x.shape[0] <= WGRAD_MAX_ROWS and x.dim() == 2 and layer.bias is not None
    if not (chunked and torch.is_grad_enabled()) or torch.is_autocast_enabled(x.device.type):  # autocast: Linear's
        return layer(x)
    return _Linear.apply(x, layer.weight, layer.bias, int(wgrad_rows))


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

    def forward(self, x: Tensor, wgrad_rows: int = 0) -> Tensor:
        """``(B, size) -> (B, size)``; ``wgrad_rows``: see :func:`linear` (0: ``nn.Linear``'s backward)."""
        t = torch.sigmoid(linear(x, self.gate, wgrad_rows) + self.gate_bias)
        g = F.relu(linear(x, self.transform, wgrad_rows))
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

    def forward(self, x: Tensor, wgrad_rows: int = 0) -> Tensor:
        """``(B, size) -> (B, size)``; ``wgrad_rows``: see :func:`linear` (0: ``nn.Linear``'s backward)."""
        h = linear(x, self.linear, wgrad_rows)
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


def _window_scores(x: Tensor, weight: Tensor, bias: Tensor, k: int) -> Tensor:
    """``windows(x, k) @ weight.T + bias`` for one width: ``(B, P, n)``."""
    b, length, _ = x.shape
    return torch.addmm(bias, _windows(x, k), weight.t()).view(b, length - k + 1, -1)


def first_argmax(y: Tensor, values: Tensor) -> Tensor:
    """``y.max(dim=1).indices`` (the first maximal position) from ``values = y.amax(dim=1)``,
    with vectorised float passes only; **overwrites** ``y``.

    ``Tensor.max(dim)`` with indices runs a scalar loop on a CPU: measured on one thread
    (torch 2.13) ~440 us for ``(64, 16, 200)`` against ~25 us for ``amax``. Here ``y - values``
    is ``0`` exactly at the maxima and negative elsewhere, so its sign plus a descending rank
    ``P..1`` scaled past the sign's step makes one ``amax`` pick the first maximum: with the
    ``amax`` about half of ``max``'s time, same indices (ties included, ``tests/test_discriminator.py``).

    Args:
        y: ``(B, P, n)`` float scores (overwritten).
        values: ``(B, n)``, ``y.amax(dim=1)``.

    Returns:
        ``(B, n)`` int64 positions in ``[0, P)`` (clamped there if ``y`` holds NaN).
    """
    p = y.shape[1]
    below = y.sub_(values.unsqueeze(1)).sign_()  # -1 below the maximum, 0 at it
    rank = torch.arange(p, 0, -1, dtype=y.dtype, device=y.device).view(1, p, 1)  # P - position
    key = torch.add(rank, below, alpha=p + 1, out=below)  # maxima: P - position >= 1; others <= -1
    return (p - key.amax(dim=1)).long().clamp_(0, p - 1)


class _WindowMaxBank(torch.autograd.Function):
    """``max over P of (windows(x, k) @ weight.T + bias)`` for every width, side by side:
    ``(B, sum n)``. ``apply(x, widths, weight_1, bias_1, weight_2, bias_2, ...)``.

    Saves ``x`` and each width's argmax (:func:`first_argmax`), not the window copies
    (recomputed in backward); the input gradient of every width is folded into one
    ``(B, L, E)`` buffer with ``k`` shifted slice-adds per width, instead of ``as_strided``'s
    generic backward (an ``index_add``) and one buffer per width. Checked with ``gradcheck``
    (``tests/test_discriminator.py``).
    """

    @staticmethod
    def forward(ctx, x: Tensor, widths: tuple[int, ...], *params: Tensor) -> Tensor:
        weights, biases = params[0::2], params[1::2]
        out = x.new_empty(x.shape[0], sum(w.shape[0] for w in weights))
        idxs, col = [], 0
        for k, weight, bias in zip(widths, weights, biases):
            y = _window_scores(x, weight, bias, k)
            values = out[:, col:col + weight.shape[0]]
            torch.amax(y, dim=1, out=values)
            idxs.append(first_argmax(y, values))
            col += weight.shape[0]
        ctx.save_for_backward(x, *weights, *idxs)
        ctx.widths = widths
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, *saved = ctx.saved_tensors
        m = len(ctx.widths)
        weights, idxs = saved[:m], saved[m:]
        b, length, e = x.shape
        grad_x = x.new_zeros(b, length, e) if ctx.needs_input_grad[0] else None
        grads, col = [], 0
        for i, (k, weight, idx) in enumerate(zip(ctx.widths, weights, idxs)):
            n, p = weight.shape[0], length - k + 1
            g = grad[:, col:col + n]
            col += n
            grad_y = g.new_zeros(b, p, n).scatter_(1, idx.unsqueeze(1), g.unsqueeze(1)).view(b * p, n)
            grads.append(grad_y.t().mm(_windows(x, k)) if ctx.needs_input_grad[2 + 2 * i] else None)
            grads.append(g.sum(0) if ctx.needs_input_grad[3 + 2 * i] else None)
            if grad_x is not None:
                grad_win = grad_y.mm(weight).view(b, p, k, e)
                for j in range(k):
                    grad_x[:, j:j + p] += grad_win[:, :, j]
        return (grad_x, None, *grads)


def windowed_conv_max(x: Tensor, convs: Sequence[nn.Conv1d], chunk_bytes: int = WINDOW_CHUNK_BYTES) -> Tensor:
    """Max over time of each ``Conv1d`` in ``convs`` applied to ``x``, ReLU after the max:
    the pooled features of :class:`CNNDiscriminator` computed without ``conv1d``.

    For a width ``k`` the ``P = L - k + 1`` windows of ``k`` consecutive embeddings are
    contiguous in ``x``, so they are one strided view ``(B, P, k * E)`` of it, copied once,
    and the convolution is one ``addmm`` with the weight laid out tap-major ``(n, k * E)``
    (:class:`_WindowMaxBank`, all widths in one autograd node). ``relu(max(y)) == max(relu(y))``,
    so the ReLU runs on ``(B, n)`` instead of ``(B, n, P)``. Same function as ``conv1d``; the sums are accumulated in
    another order (float32 difference ~1e-6 on the logits). The max's gradient goes to one
    position where ``amax`` (the reference) splits it among exactly tied windows; ties arise
    only between identical windows, e.g. all-padding ones, whose zero inputs get no gradient.

    Under autocast (Lightning's ``bf16-mixed`` / ``16-mixed``) it computes in the autocast
    dtype, as ``conv1d`` does there.

    Memory: one width's window copy (``P * k * E`` floats per row) lives at a time; with
    gradients ``x`` and the argmax are kept, not the copies (recomputed in backward); without
    gradients no argmax is computed (``amax`` alone) and rows are taken in chunks so that one
    copy stays under ``chunk_bytes``.

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
    for conv in convs:
        if conv.kernel_size[0] > length:
            raise ValueError(f"filter width {conv.kernel_size[0]} exceeds the sequence length {length}")
    widths = tuple(conv.kernel_size[0] for conv in convs)
    # (n, k * E): taps major, as the windows
    weights = [conv.weight.transpose(1, 2).reshape(conv.out_channels, k * e) for conv, k in zip(convs, widths)]
    if torch.is_grad_enabled() and (x.requires_grad or any(c.weight.requires_grad for c in convs)):
        biases = [conv.bias for conv in convs]
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else None
        if dtype is None:
            return F.relu(_WindowMaxBank.apply(x, widths, *[t for wb in zip(weights, biases) for t in wb]))
        # under autocast, as conv1d: computed in the autocast dtype (the casts are autograd's; the
        # backward gets tensors of one dtype)
        params = [t.to(dtype) for wb in zip(weights, biases) for t in wb]
        with torch.autocast(x.device.type, enabled=False):
            return F.relu(_WindowMaxBank.apply(x.to(dtype), widths, *params))
    pooled = []
    for k, weight, conv in zip(widths, weights, convs):
        rows = max(1, chunk_bytes // ((length - k + 1) * k * e * x.element_size()))
        parts = [_window_scores(x[i:i + rows], weight, conv.bias, k).amax(dim=1) for i in range(0, b, rows)]
        pooled.append(parts[0] if len(parts) == 1 else torch.cat(parts))
    return F.relu(torch.cat(pooled, dim=1))
