"""`gan-writer export --merge` of a GGUF-based (SmolLM2) adapter run: transformers keeps its GGUF
marker on the dequantized model and refuses to save it; export drops the marker (only GGUF's)."""
import json

import torch
from transformers.utils.quantization_config import QuantizationMethod

from gan_writer.commands.export import _without_gguf_quantizer
import helpers


class _Unserializable:
    is_serializable = False


def test_a_dequantized_gguf_model_saves_and_reloads_with_the_same_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    model = helpers.tiny_gpt2(12, 0, n_positions=16).eval().model
    model.config.quantization_config = {"quant_method": QuantizationMethod.GGUF}
    model.hf_quantizer = _Unserializable()
    _without_gguf_quantizer(model).save_pretrained(tmp_path / "m", safe_serialization=True)
    assert "quantization_config" not in json.loads((tmp_path / "m" / "config.json").read_text())
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    ids = torch.randint(3, 12, (2, 6))
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, model(ids).logits, atol=1e-6)


def test_other_quantization_methods_are_left_alone():
    model = helpers.tiny_gpt2(12, 0, n_positions=16).model
    model.config.quantization_config = {"quant_method": "bitsandbytes"}
    quantizer = model.hf_quantizer = _Unserializable()
    assert _without_gguf_quantizer(model).hf_quantizer is quantizer
    assert model.config.quantization_config == {"quant_method": "bitsandbytes"}


def test_export_of_a_plain_checkpoint_is_readable_quiet_and_says_merge_did_nothing(tmp_path, capsys):
    """Files under the umask's usual modes (safetensors writes 0600 by itself), no shard progress
    bar, a note when --merge has no adapter to merge, the weights unchanged."""
    import os
    import stat

    from transformers import AutoModelForCausalLM

    from gan_writer.checkpoint import payload
    from gan_writer.cli import main
    from gan_writer.tokenization import char_tokenizer

    gen = helpers.tiny_gpt2()
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"gan_writer": payload(gen, char_tokenizer(["abc"]), stage="MLEModule"),
                "state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()}}, ckpt)
    old = os.umask(0o022)
    try:
        assert main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "out"), "--merge"]) == 0
    finally:
        os.umask(old)
    err = capsys.readouterr().err
    assert f"note: {ckpt} has no adapter: --merge has nothing to merge" in err
    assert "Writing model shards" not in err and "%|" not in err
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "model.safetensors" in files and "tokenizer.json" in files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()} == dict.fromkeys(files, 0o644)
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, gen.eval().model(ids).logits, atol=1e-6)
