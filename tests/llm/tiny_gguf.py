"""Tiny llama-architecture GGUF files written with the ``gguf`` package, for tests.

A real llama.cpp server loads them in well under a second and answers chat requests with
(meaningless) text, so endpoint, LoRA, autoscaling and rollout tests can run a real
server without a real model. The vocabulary is printable ASCII (one token per
character) plus ``<unk>``, ``<s>`` and ``</s>``; the weights are random but seeded, so
one seed gives one answer at temperature 0. ``write_lora`` writes a LoRA adapter for
such a model in llama.cpp's adapter format (``general.type: adapter``), large enough to
change what the model answers.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

EMBED = 64
HEADS = 4
LAYERS = 2
FFN = 128
CONTEXT = 512
SPECIALS = ("<unk>", "<s>", "</s>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}: {{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
_PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output")


def _vocabulary() -> list[str]:
    printable = ["▁" if code == 32 else chr(code) for code in range(32, 127)]
    return [*SPECIALS, *printable]


def write_model(path: Path, *, seed: int = 0) -> Path:
    """A two-layer llama model of about 200 KB at ``path``."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary()
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("reconciler-tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab)
    writer.add_token_scores([0.0] * len(SPECIALS) + [-1.0] * (len(vocab) - len(SPECIALS)))
    writer.add_token_types(
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.NORMAL] * (len(vocab) - len(SPECIALS))
    )
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    # numpy shapes are (rows, columns) = ggml's (ne1, ne0): (outputs, inputs).
    writer.add_tensor("token_embd.weight", weight(len(vocab), EMBED))
    writer.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    writer.add_tensor("output.weight", weight(len(vocab), EMBED))
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        for projection in _PROJECTIONS:
            writer.add_tensor(f"{block}.{projection}.weight", weight(EMBED, EMBED))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(FFN, EMBED))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(FFN, EMBED))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(EMBED, FFN))
    _finish(writer)
    return path


def write_lora(path: Path, *, seed: int, rank: int = 4, scale: float = 1.5) -> Path:
    """A LoRA adapter for ``write_model``'s model that moves its output head a lot."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    vocab = len(_vocabulary())
    # lora_a: ggml (inputs, rank); lora_b: ggml (rank, outputs).
    targets = {"output.weight": vocab}
    for layer in range(LAYERS):
        targets[f"blk.{layer}.attn_q.weight"] = EMBED
        targets[f"blk.{layer}.attn_v.weight"] = EMBED
    for name, outputs in targets.items():
        a = (rng.standard_normal((rank, EMBED)) * scale).astype(np.float32)
        b = (rng.standard_normal((outputs, rank)) * scale).astype(np.float32)
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    _finish(writer)
    return path


def _finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
