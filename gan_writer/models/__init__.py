"""Generator and discriminator modules (plain ``nn.Module``s)."""
from __future__ import annotations

from gan_writer.models.base import CausalGenerator
from gan_writer.models.generator import Generator, GeneratorConfig

__all__ = ["CausalGenerator", "Generator", "GeneratorConfig", "build_generator", "build_generator_from_spec"]


def build_generator(config: GeneratorConfig, tokenizer) -> CausalGenerator:
    """Build the generator a :class:`GeneratorConfig` describes for a tokenizer's vocabulary.

    Args:
        config: backend and sizes (or a pretrained model path).
        tokenizer: a ``PreTrainedTokenizerFast`` with BOS/EOS/PAD set (see
            :mod:`gan_writer.tokenization`); its special ids become the generator's.

    Raises:
        ValueError: for an unknown ``config.backend`` or a tokenizer whose vocabulary does
            not fit the pretrained model.
    """
    special = dict(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if config.backend == "transformer":
        if config.pretrained:
            resize = None if config.peft is not None else len(tokenizer)  # an adapter keeps the base's embeddings
            gen = Generator.from_pretrained(config.pretrained, config.gguf_file, vocab_size=resize, **special)
            if config.peft is not None:
                from gan_writer.models import adapters, pretrained_base

                if len(tokenizer) > gen.vocab_size:
                    raise ValueError(
                        f"model.generator.peft: the tokenizer has {len(tokenizer)} tokens but the frozen base "
                        f"{config.pretrained} has {gen.vocab_size}: use the model's own tokenizer "
                        f"(data.tokenizer: {config.pretrained})"
                    )
                adapters.apply_adapter(gen, config.peft, pretrained_base.base_identity(config.pretrained, config.gguf_file),
                                       config.gradient_checkpointing)
            elif config.gradient_checkpointing:
                gen.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            return gen
        if config.peft is not None:
            raise ValueError(
                "model.generator.peft adapts a pretrained model: set model.generator.pretrained "
                "(e.g. smollm2-135m-instruct, a local HF directory or a .gguf file)"
            )
        return Generator.from_config(
            len(tokenizer), n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head,
            n_positions=config.n_positions, dropout=config.dropout, **special,
        )
    if config.backend == "lstm":
        from gan_writer.models.lstm import LSTMGenerator

        return LSTMGenerator(len(tokenizer), emb_dim=config.emb_dim, hidden_dim=config.hidden_dim, **special)
    raise ValueError(f"model.generator.backend must be 'transformer' or 'lstm', got {config.backend!r}")


def build_generator_from_spec(spec: dict) -> CausalGenerator:
    """Rebuild a generator (random weights) from ``generator.spec()``, e.g. from a checkpoint.

    Raises:
        ValueError: if ``spec['backend']`` names no known backend.
    """
    backend = spec.get("backend")
    if backend == "transformer" and spec.get("peft"):
        from gan_writer.models.adapters import generator_from_spec

        return generator_from_spec(spec)
    if backend == "transformer":
        return Generator.from_spec(spec)
    if backend == "lstm":
        from gan_writer.models.lstm import LSTMGenerator

        return LSTMGenerator.from_spec(spec)
    if backend == "image_prefix":
        from gan_writer.multimodal.generator import ImagePrefixGenerator

        return ImagePrefixGenerator.from_spec(spec)
    if backend == "oracle":
        from gan_writer.models.oracle import OracleLSTM

        return OracleLSTM.from_spec(spec)
    raise ValueError(f"checkpoint generator spec has unknown backend {backend!r}")
