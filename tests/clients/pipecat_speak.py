"""Run in the pipecat venv: pipecat's OpenAITTSService, with its defaults, speaks one text through
the server at argv[1] (its /v1 base URL); prints what came out as one JSON line."""

import asyncio
import json
import sys
import time

from pipecat.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import run_test


async def main(base_url: str, text: str, settings: dict) -> dict:
    service = OpenAITTSService(api_key="unused", base_url=base_url,
                               **({"settings": OpenAITTSService.Settings(**settings)} if settings else {}))
    started = time.perf_counter()
    down, up = await run_test(service, frames_to_send=[TTSSpeakFrame(text)],
                              pipeline_params=PipelineParams(audio_out_sample_rate=24000))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    errors = [f.error for f in [*down, *up] if isinstance(f, ErrorFrame)]
    return {"frames": len(audio), "bytes": sum(len(f.audio) for f in audio),
            "rates": sorted({f.sample_rate for f in audio}), "channels": sorted({f.num_channels for f in audio}),
            "errors": errors, "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
