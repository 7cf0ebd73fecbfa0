"""gan_writer: adversarial text generation (SeqGAN-style) for creative writing."""

__version__ = "0.1.0"
