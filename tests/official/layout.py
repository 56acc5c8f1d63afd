"""The tiny checkpoints' layout, shared by the test process and the official implementation's child.

Plain data only (no torch, no MLX): configs in the official on-disk layout and the real ids.
"""

from __future__ import annotations

def speech_tokenizer_config(**decoder) -> dict:
    """A tiny 12 Hz speech tokenizer config; keyword arguments override decoder fields."""
    enc = {
        "sampling_rate": 24000, "frame_rate": 12.5, "audio_channels": 1, "hidden_size": 32,
        "num_filters": 4, "num_residual_layers": 1, "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7, "last_kernel_size": 3, "residual_kernel_size": 3,
        "dilation_growth_rate": 2, "use_causal_conv": True, "pad_mode": "constant", "compress": 2,
        "trim_right_ratio": 1.0, "codebook_size": 2048, "codebook_dim": 16, "num_quantizers": 32,
        "vector_quantization_hidden_dimension": 16, "num_semantic_quantizers": 1,
        "upsample_groups": 32, "num_hidden_layers": 1, "intermediate_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 8, "hidden_act": "gelu",
        "max_position_embeddings": 8000, "norm_eps": 1e-5, "use_cache": False,
        "use_streaming": False, "rope_theta": 10000.0, "sliding_window": 250,
        "layer_scale_initial_scale": 0.01, "attention_bias": False,
    }
    dec = {
        "codebook_size": 2048, "codebook_dim": 32, "latent_dim": 32, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "head_dim": 16, "hidden_act": "silu",
        "max_position_embeddings": 8000, "rope_theta": 10000, "attention_bias": False,
        "sliding_window": 72, "layer_scale_initial_scale": 0.01, "rms_norm_eps": 1e-5,
        "num_quantizers": 16, "num_semantic_quantizers": 1, "semantic_codebook_size": 4096,
        "vector_quantization_hidden_dimension": 32, "upsample_rates": [8, 5, 4, 3],
        "upsampling_ratios": [2, 2], "decoder_dim": 64, "attention_dropout": 0.0,
    }
    dec.update(decoder)
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"], "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": 16, "input_sample_rate": 24000, "output_sample_rate": 24000,
        "decode_upsample_rate": 1920, "encode_downsample_rate": 1920,
        "encoder_config": enc, "decoder_config": dec,
    }


FEATURE_EXTRACTOR = {
    "chunk_length_s": None, "feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1,
    "overlap": None, "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
    "sampling_rate": 24000,
}


LANGUAGE_IDS = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
    "beijing_dialect": 2074, "sichuan_dialect": 2062,
}
# Real preset ids; eric and dylan are the dialect speakers.
SPEAKER_IDS = {"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
               "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878}
SPEAKER_DIALECTS = {name: False for name in SPEAKER_IDS} | {"eric": "sichuan_dialect", "dylan": "beijing_dialect"}

GENERATION_CONFIG = {
    "do_sample": True, "repetition_penalty": 1.05, "temperature": 0.9, "top_p": 1.0, "top_k": 50,
    "subtalker_dosample": True, "subtalker_temperature": 0.9, "subtalker_top_p": 1.0,
    "subtalker_top_k": 50, "max_new_tokens": 8192,
}

# Talker shapes for the parity grid: GQA ratios, head dims, depths, with and without the
# code predictor being narrower than the talker (the 1.7B-style projection).
TALKER_SHAPES = {
    "proj": dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, inter=128,
                 cp_hidden=32, cp_layers=2, cp_heads=4, cp_kv=2, cp_head_dim=8, cp_inter=64),
    "noproj": dict(hidden=48, layers=3, heads=6, kv_heads=3, head_dim=8, inter=96,
                   cp_hidden=48, cp_layers=1, cp_heads=2, cp_kv=1, cp_head_dim=24, cp_inter=80),
    "mha": dict(hidden=32, layers=1, heads=2, kv_heads=2, head_dim=32, inter=64,
                cp_hidden=16, cp_layers=3, cp_heads=4, cp_kv=1, cp_head_dim=8, cp_inter=32),
}


def talker_config(shape: dict, custom_voice: bool, text_hidden: int = 48) -> dict:
    s = shape
    half = s["head_dim"] // 2
    side = half * 20 // 64
    return {
        "hidden_size": s["hidden"], "intermediate_size": s["inter"], "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"], "num_key_value_heads": s["kv_heads"], "head_dim": s["head_dim"],
        "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000,
        "rope_scaling": {"interleaved": True, "mrope_section": [half - 2 * side, side, side], "rope_type": "default"},
        "position_id_per_seconds": 13, "attention_bias": False, "vocab_size": 3072,
        "text_vocab_size": 151936, "text_hidden_size": text_hidden, "num_code_groups": 16,
        "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150, "codec_think_id": 2154,
        "codec_nothink_id": 2155, "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
        "codec_language_id": dict(LANGUAGE_IDS),
        "spk_id": dict(SPEAKER_IDS) if custom_voice else {},
        "spk_is_dialect": dict(SPEAKER_DIALECTS) if custom_voice else {},
        "code_predictor_config": {
            "hidden_size": s["cp_hidden"], "intermediate_size": s["cp_inter"],
            "num_hidden_layers": s["cp_layers"], "num_attention_heads": s["cp_heads"],
            "num_key_value_heads": s["cp_kv"], "head_dim": s["cp_head_dim"], "hidden_act": "silu",
            "max_position_embeddings": 65536, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
            "attention_bias": False, "vocab_size": 2048, "num_code_groups": 16,
        },
    }


def speaker_encoder_config(enc_dim: int) -> dict:
    return {"mel_dim": 128, "enc_dim": enc_dim, "enc_channels": [32, 32, 32, 32, 96],
            "enc_kernel_sizes": [5, 3, 3, 3, 1], "enc_dilations": [1, 2, 3, 4, 1],
            "enc_attention_channels": 16, "enc_res2net_scale": 8, "enc_se_channels": 16,
            "sample_rate": 24000}


SPEAKER_ENCODER_KEYS = ("mel_dim", "enc_dim", "enc_channels", "enc_kernel_sizes", "enc_dilations",
                         "enc_attention_channels", "enc_res2net_scale", "enc_se_channels", "sample_rate")
