"""Config parsing with the released checkpoints' values."""

from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.sampling import SamplingConfig

# The 1.7B CustomVoice config.json, abridged to the fields the model reads.
RELEASED_1B7_CUSTOM_VOICE = {
    "model_type": "qwen3_tts", "tokenizer_type": "qwen3_tts_tokenizer_12hz", "tts_model_size": "1b7",
    "tts_model_type": "custom_voice", "im_start_token_id": 151644, "im_end_token_id": 151645,
    "tts_pad_token_id": 151671, "tts_bos_token_id": 151672, "tts_eos_token_id": 151673,
    "assistant_token_id": 77091, "speaker_encoder_config": {"enc_dim": 2048, "sample_rate": 24000},
    "talker_config": {
        "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
        "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu", "rms_norm_eps": 1e-6,
        "rope_theta": 1000000, "max_position_embeddings": 32768,
        "rope_scaling": {"rope_type": "default", "type": "default", "mrope_section": [24, 20, 20], "interleaved": True},
        "vocab_size": 3072, "text_vocab_size": 151936, "text_hidden_size": 2048, "num_code_groups": 16,
        "position_id_per_seconds": 13, "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150,
        "codec_think_id": 2154, "codec_nothink_id": 2155, "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
        "codec_language_id": {"chinese": 2055, "english": 2050, "german": 2053, "italian": 2070,
                              "portuguese": 2071, "spanish": 2054, "japanese": 2058, "korean": 2064,
                              "french": 2061, "russian": 2069, "beijing_dialect": 2074, "sichuan_dialect": 2062},
        "spk_id": {"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
                   "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878},
        "spk_is_dialect": {"serena": False, "vivian": False, "uncle_fu": False, "ryan": False, "aiden": False,
                           "ono_anna": False, "sohee": False, "eric": "sichuan_dialect", "dylan": "beijing_dialect"},
        "code_predictor_config": {
            "vocab_size": 2048, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 5,
            "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
            "rms_norm_eps": 1e-6, "rope_theta": 1000000, "rope_scaling": None, "max_position_embeddings": 65536,
            "num_code_groups": 16, "do_sample": False, "top_k": 50, "temperature": 1.0, "max_length": 20},
    },
}


def test_released_config_values():
    cfg = ModelConfig.from_dict(RELEASED_1B7_CUSTOM_VOICE)
    t = cfg.talker
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.head_dim) == (
        2048, 28, 16, 8, 128)
    assert t.code_predictor.hidden_size == 1024 and t.code_predictor.num_hidden_layers == 5
    assert t.codec_eos_token_id == 2150 and t.codebook_size == 2048
    assert t.spk_id["eric"] == 2875 and t.spk_is_dialect["dylan"] == "beijing_dialect"
    assert cfg.tts_pad_token_id == 151671 and cfg.supports_instruct
    assert cfg.languages[0] == "auto" and "beijing_dialect" not in cfg.languages and len(cfg.languages) == 11
    assert cfg.speakers == sorted(cfg.speakers) and len(cfg.speakers) == 9


def test_class_defaults_never_leak_over_json():
    cfg = ModelConfig.from_dict({**RELEASED_1B7_CUSTOM_VOICE, "tts_model_size": "0b6"})
    assert not cfg.supports_instruct  # 0.6B CustomVoice has no instruction control
    vd = ModelConfig.from_dict({**RELEASED_1B7_CUSTOM_VOICE, "tts_model_type": "voice_design"})
    assert vd.supports_instruct


def test_speaker_ids_given_as_lists_are_flattened():
    raw = {**RELEASED_1B7_CUSTOM_VOICE}
    raw["talker_config"] = {**raw["talker_config"], "spk_id": {"Vivian": [3065]}}
    assert ModelConfig.from_dict(raw).talker.spk_id == {"vivian": 3065}


def test_sampling_resolution_order():
    shipped = SamplingConfig.from_dict({"max_new_tokens": 8192, "top_k": 50, "temperature": 0.9, "unknown": 1})
    assert shipped.max_new_tokens == 8192
    assert SamplingConfig().max_new_tokens == 2048  # fallback when generation_config.json lacks it
    greedy = shipped.resolve(temperature=0, top_k=None)
    assert not greedy.do_sample and greedy.top_k == 50 and greedy.subtalker_dosample
    cp_greedy = shipped.resolve(subtalker_temperature=0.0)
    assert cp_greedy.do_sample and not cp_greedy.subtalker_dosample
