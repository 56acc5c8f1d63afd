"""OpenAI's voice names on every model: each answers to a preset on CustomVoice (the default
table, or --voice-alias), to --default-voice on Base, where a voice registered under the name
wins; the voice list in the shapes clients read; our own names in any case."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from mlx_qwen3tts import Voice
from mlx_qwen3tts.server.cli import main as serve_main
from mlx_qwen3tts.server.errors import APIError
from mlx_qwen3tts.server.voice_aliases import DEFAULT_ALIASES, FEMALE_PRESETS, MALE_PRESETS, Voices, parse_alias
from mlx_qwen3tts.server.voices import OPENAI_VOICES, VoiceRegistry
from serving import TEXT, LiveServer, decode
from serving import server, tts  # noqa: F401  (fixtures)

ARGS = dict(seed=3, max_new_tokens=6)
NINE = ["aiden", "dylan", "eric", "ono_anna", "ryan", "serena", "sohee", "uncle_fu", "vivian"]


def test_the_default_table_covers_openais_names_and_spreads_over_the_presets():
    assert sorted(DEFAULT_ALIASES) == sorted(OPENAI_VOICES) and len(OPENAI_VOICES) == 13
    assert set(DEFAULT_ALIASES.values()) == set(NINE) == set(FEMALE_PRESETS) | set(MALE_PRESETS)
    voices = Voices(VoiceRegistry("custom_voice", [n.title() for n in NINE], None))
    for name, preset in DEFAULT_ALIASES.items():
        assert voices.resolve(name.upper(), True).options == {"speaker": preset.title()}
    assert voices.resolve("RYAN", True).options == {"speaker": "Ryan"}  # our names, any case


def test_a_model_without_the_preset_gets_one_of_the_same_kind():
    voices = Voices(VoiceRegistry("custom_voice", ["eric", "vivian"], None))
    assert voices.resolve("shimmer", True).name == "vivian"  # ono_anna is missing: another female voice
    assert voices.resolve("onyx", True).name == "eric"  # uncle_fu is missing: another male voice


def test_voice_alias_overrides_and_bad_ones_say_why():
    registry = VoiceRegistry("custom_voice", NINE, None)
    voices = Voices(registry, (parse_alias("Alloy=RYAN"), parse_alias("narrator=uncle_fu")))
    assert voices.resolve("alloy", True).name == "ryan" and voices.resolve("Narrator", True).name == "uncle_fu"
    with pytest.raises(ValueError, match="no preset 'bob'; its presets are: aiden, dylan"):
        Voices(registry, (("alloy", "bob"),))
    for text in ("alloy", "=ryan", "../x=ryan"):
        with pytest.raises(ValueError, match="--voice-alias"):
            parse_alias(text)
    assert serve_main(["--voice-alias", "alloy"]) == 2  # refused before anything loads


def _voice(folder, name: str, value: float) -> None:
    Voice(x_vector=np.full(8, value, np.float32)).save(folder / f"{name}.safetensors")


def test_base_models_answer_openai_names_with_the_default_voice(tmp_path):
    registry = VoiceRegistry("base", [], tmp_path)
    with pytest.raises(APIError, match=r"POST /v1/audio/voices with name=alloy\), or start the server with "
                                       "--default-voice NAME") as refused:
        Voices(registry).resolve("Alloy", True)
    assert refused.value.status == 400 and refused.value.code == "voice_not_found"
    voices = Voices(registry, default_voice="me")
    with pytest.raises(APIError, match="--default-voice 'me', which is not registered"):
        voices.resolve("ash", True)
    _voice(tmp_path, "me", 1.0)
    assert voices.resolve("ash", True).name == "me" and voices.resolve(None, False).name == "me"
    _voice(tmp_path, "ash", 2.0)  # a voice registered under an OpenAI name is that voice
    resolved = voices.resolve("ash", True)
    assert resolved.name == "ash" and resolved.options["voice"].x_vector[0] == 2.0
    assert voices.resolve("alloy", True).name == "me"
    assert [v["id"] for v in voices.listing()][:2] == ["ash", "me"]


def test_the_openai_client_speaks_with_alloy(server, tts):
    assert server.state.voices.aliases["alloy"] == "vivian"  # serena's stand-in on this two-voice model
    expected = tts.generate(TEXT, speaker="vivian", **ARGS).samples
    body = server.openai().audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="pcm",
                                               extra_body=ARGS).content
    np.testing.assert_allclose(decode(body, "pcm"), expected, atol=1 / 32768 + 1e-6)


def test_voice_alias_on_a_server(tts):
    expected = tts.generate(TEXT, speaker="eric", **ARGS).samples
    with LiveServer(tts, voice_aliases=(("alloy", "eric"),)) as live:
        r = httpx.post(f"{live.url}/v1/audio/speech", timeout=60, json={
            "input": TEXT, "voice": "alloy", "response_format": "pcm", **ARGS})
        listing = httpx.get(f"{live.url}/v1/audio/voices").json()
    assert r.status_code == 200
    np.testing.assert_allclose(decode(r.content, "pcm"), expected, atol=1 / 32768 + 1e-6)
    alloy = next(v for v in listing["voices"] if v["id"] == "alloy")
    assert alloy == {"id": "alloy", "name": "alloy (eric)", "object": "audio.voice", "type": "alias", "voice": "eric"}


def test_discovery_in_the_shapes_clients_read(server, tts):
    voices = httpx.get(f"{server.url}/v1/audio/voices").json()
    assert voices["voices"] == voices["data"]
    assert [v["id"] for v in voices["voices"]] == tts.speakers + list(DEFAULT_ALIASES)
    assert all(v["name"] for v in voices["voices"])
    models = httpx.get(f"{server.url}/v1/audio/models").json()
    assert [m["id"] for m in models["models"]] == ["tiny-tts"] and models["data"] == models["models"]
