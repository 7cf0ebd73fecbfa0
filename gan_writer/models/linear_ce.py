"""Per-token log-probabilities of a linear output layer, computed in row chunks.

``log_softmax(h @ W.T + b)[target]`` written as ``addmm`` then ``cross_entropy`` makes
four passes over a ``(N, V)`` tensor in main memory (the logits, their log-softmax, the
gradient and its softmax term: 25.6 MB each for the SeqGAN oracle's 1,280 tokens and
5,000 words) and the step is bound by memory traffic. Here each chunk of rows is
projected, reduced and (in the backward) turned into its gradient while it sits in the
cache; the backward recomputes the chunk's logits (one more ``(N, H) @ (H, V)`` product,
cheap for the small ``H`` of an LSTM) instead of keeping them. The idea is the fused
linear cross-entropy of Liger-Kernel (Hsu et al. 2024) and Cut Cross-Entropy (Wijmans et
al. 2024), on the CPU in plain PyTorch ops.

Same function as ``-F.cross_entropy(F.linear(h, W, b) * scale, target, reduction="none")``
to float rounding (~2e-6 in the values, ~1e-6 of the gradients' scale;
``tests/test_linear_ce.py``).
"""
from __future__ import annotations

import torch

__all__ = ["linear_log_probs", "chunk_rows"]

CHUNK_BYTES = 4 << 20  # a chunk's (rows, V) float32 logits: fits a CPU's L2/L3 cache


def chunk_rows(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk so that one chunk's ``(rows, V)`` float32 logits take ``chunk_bytes``."""
    return max(1, chunk_bytes // (4 * max(1, vocab_size)))


class _LinearLogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, scale, rows):
        n = h.size(0)
        out = torch.empty(n, dtype=h.dtype, device=h.device)
        lse = torch.empty(n, dtype=h.dtype, device=h.device)
        for s in range(0, n, rows):
            logits = _logits(h[s:s + rows], weight, bias, scale)
            lse[s:s + rows] = torch.logsumexp(logits, 1)
            out[s:s + rows] = logits.gather(1, target[s:s + rows, None])[:, 0]
        out.sub_(lse)
        ctx.save_for_backward(h, weight, bias, target, lse)
        ctx.scale, ctx.rows = scale, rows
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, weight, bias, target, lse = ctx.saved_tensors
        scale, rows = ctx.scale, ctx.rows
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b and bias is not None else None
        grad_out = grad_out.contiguous()
        for s in range(0, h.size(0), rows):
            g = grad_out[s:s + rows]
            # d log p_target / d logits = onehot(target) - softmax, times the incoming gradient
            d = _logits(h[s:s + rows], weight, bias, scale).sub_(lse[s:s + rows, None]).exp_().mul_(-g[:, None])
            d.scatter_add_(1, target[s:s + rows, None], g[:, None])
            if scale != 1.0:
                d.mul_(scale)  # logits = scale * (h W^T + b)
            if grad_h is not None:
                torch.mm(d, weight, out=grad_h[s:s + rows])
            if grad_w is not None:
                grad_w.addmm_(d.t(), h[s:s + rows])
            if grad_b is not None:
                grad_b.add_(d.sum(0))
        return grad_h, grad_w, grad_b, None, None, None


def _logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, scale: float) -> torch.Tensor:
    logits = torch.addmm(bias, h, weight.t()) if bias is not None else h @ weight.t()
    return logits.mul_(scale) if scale != 1.0 else logits


def linear_log_probs(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor,
    scale: float = 1.0, rows: int | None = None,
) -> torch.Tensor:
    """``log_softmax(scale * (h @ weight.T + bias))`` at ``target``, chunk by chunk.

    Args:
        h: ``(N, H)`` float32 hidden states (float64 also works).
        weight: ``(V, H)`` output layer weight; bias: ``(V,)`` or None.
        target: ``(N,)`` int64 token ids in ``[0, V)``.
        scale: multiplies the logits (``1 / temperature``).
        rows: rows per chunk; default :func:`chunk_rows` of ``V``.

    Returns:
        ``(N,)`` log-probabilities in nats, differentiable in ``h``, ``weight`` and ``bias``
        (first derivatives only).

    Raises:
        ValueError: mismatched shapes, or ``h`` and ``weight`` not both float32 (or float64:
            for ``gradcheck``); :meth:`CausalGenerator.log_probs` takes the unfused path for
            other dtypes and under autocast.
    """
    if h.dim() != 2 or weight.dim() != 2 or h.size(1) != weight.size(1) or target.shape != h.shape[:1]:
        raise ValueError(f"linear_log_probs: h {tuple(h.shape)}, weight {tuple(weight.shape)} and target "
                         f"{tuple(target.shape)} do not fit (N, H), (V, H), (N,)")
    if h.dtype not in (torch.float32, torch.float64) or weight.dtype != h.dtype:
        raise ValueError(f"linear_log_probs computes in float32 (or float64), got {h.dtype} / {weight.dtype}")
    rows = rows or chunk_rows(weight.size(0))
    return _LinearLogProbs.apply(h.contiguous(), weight, bias, target.contiguous(), float(scale), int(rows))
