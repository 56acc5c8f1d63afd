"""Empty stand-in: qwen_tts imports torchaudio at import time, but only its unreleased 25 Hz path uses it."""
