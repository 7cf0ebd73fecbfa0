"""The units of ``bench_adversarial.py`` run with TextGAN-PyTorch's own SeqGAN code
(williamSYSU/TextGAN-PyTorch, a local checkout whose path the user gives; nothing is
downloaded). Its modules are imported from that checkout: ``config`` (forced to CPU),
``models.SeqGAN_G`` / ``models.SeqGAN_D``, ``utils.rollout.ROLLOUT``, ``utils.data_loader``
(``GenDataIter.prepare``, ``DisDataIter``), and the epoch loops of
``instructor/real_data/instructor.py`` (``train_gen_epoch``, ``train_dis_epoch``,
``optimize``), called unbound so that no instructor (log files, data files) is built.

Settings are TextGAN's SeqGAN defaults aligned to the oracle experiment: LSTM 32/32,
vocabulary 5,000, length 20, batch 64, 16 rollouts, its CNN with the same 12 filter widths,
Adam (generator lr 0.01, discriminator 1e-4), gradient-norm clip ``cfg.clip_norm``.
"""
from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import torch
from torch import nn


class TextGAN:
    """TextGAN-PyTorch's SeqGAN pieces, built from the checkout at ``path``.

    Raises:
        ImportError: if ``path`` is not a TextGAN-PyTorch checkout (the error names it).
    """

    def __init__(self, path: str, vocab_size: int, max_len: int, batch_size: int, seed: int = 0) -> None:
        sys.path.insert(0, str(path))
        try:
            cfg = importlib.import_module("config")
            if not hasattr(cfg, "clip_norm"):
                raise ImportError(f"{path}/config.py is not TextGAN-PyTorch's config (no clip_norm)")
            cfg.CUDA = False
            cfg.vocab_size, cfg.max_seq_len, cfg.batch_size = vocab_size, max_len, batch_size
            cfg.data_shuffle = True
            self.cfg = cfg
            self.SeqGAN_G = importlib.import_module("models.SeqGAN_G").SeqGAN_G
            self.SeqGAN_D = importlib.import_module("models.SeqGAN_D").SeqGAN_D
            self.rollout = importlib.import_module("utils.rollout")
            data_loader = importlib.import_module("utils.data_loader")
            self.GenDataIter, self.DisDataIter = data_loader.GenDataIter, data_loader.DisDataIter
            self.Instructor = importlib.import_module("instructor.real_data.instructor").BasicInstructor
        except ImportError as err:
            raise ImportError(f"--textgan {path}: cannot import TextGAN-PyTorch's modules ({err})") from err
        torch.manual_seed(seed)
        self.gen = self.SeqGAN_G(cfg.gen_embed_dim, cfg.gen_hidden_dim, vocab_size, max_len, cfg.padding_idx, gpu=False)
        self.dis = self.SeqGAN_D(cfg.dis_embed_dim, vocab_size, cfg.padding_idx, gpu=False)
        self.gen_opt = torch.optim.Adam(self.gen.parameters(), lr=cfg.gen_lr)
        self.gen_adv_opt = torch.optim.Adam(self.gen.parameters(), lr=cfg.gen_lr)
        self.dis_opt = torch.optim.Adam(self.dis.parameters(), lr=cfg.dis_lr)
        self.mle_criterion, self.dis_criterion = nn.NLLLoss(), nn.CrossEntropyLoss()
        self.batch_size = batch_size
        self._self = SimpleNamespace(optimize=self.Instructor.optimize)  # its loops use self only for this

    def describe(self) -> str:
        c = self.cfg
        return (f"TextGAN-PyTorch: G emb {c.gen_embed_dim} hidden {c.gen_hidden_dim}, D emb {c.dis_embed_dim}, "
                f"gen_lr {c.gen_lr}, dis_lr {c.dis_lr}, clip_norm {c.clip_norm}")

    def negatives(self, n: int) -> torch.Tensor:
        """``n`` samples as its ``train_discriminator`` draws them (chunks of 4 × batch size)."""
        return self.gen.sample(n, 4 * self.batch_size)

    def rollout_rewards(self, rollout_num: int) -> torch.Tensor:
        """One batch's Monte Carlo rewards (``adv_train_generator`` without the update)."""
        _, target = self.GenDataIter.prepare(self.gen.sample(self.batch_size, self.batch_size))
        return self.rollout.ROLLOUT(self.gen, False).get_reward(target, rollout_num, self.dis)

    def generator_step(self, rollout_num: int) -> None:
        """``adv_train_generator(1)``: sample, rewards, policy-gradient step (no clip, as there)."""
        inp, target = self.GenDataIter.prepare(self.gen.sample(self.batch_size, self.batch_size))
        rewards = self.rollout.ROLLOUT(self.gen, False).get_reward(target, rollout_num, self.dis)
        self.Instructor.optimize(self.gen_adv_opt, self.gen.batchPGLoss(inp, target, rewards))

    def discriminator_epochs(self, real: torch.Tensor, fake: torch.Tensor, epochs: int) -> None:
        """``epochs`` × ``train_dis_epoch`` over real + fake (its ``DisDataIter``, batches of 64 mixed)."""
        data = self.DisDataIter(real, fake)
        for _ in range(epochs):
            self.Instructor.train_dis_epoch(self._self, self.dis, data.loader, self.dis_criterion, self.dis_opt)

    def mle_epoch(self, real: torch.Tensor) -> None:
        """One ``train_gen_epoch`` over ``real`` (its ``GenDataIter``)."""
        data = self.GenDataIter(real)
        self.Instructor.train_gen_epoch(self._self, self.gen, data.loader, self.mle_criterion, self.gen_opt)

    def adversarial_batch(self, real: torch.Tensor, rollout_num: int, d_steps: int, d_epochs: int, n: int) -> None:
        """One adversarial epoch of its ``SeqGANInstructor._run``: G step, then
        ``train_discriminator(d_steps, d_epochs)`` with ``n`` fresh negatives per step."""
        self.generator_step(rollout_num)
        for _ in range(d_steps):
            self.discriminator_epochs(real, self.negatives(n), d_epochs)

