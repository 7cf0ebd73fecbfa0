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
