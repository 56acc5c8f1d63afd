"""Run in the LiveKit venv: livekit-plugins-openai's TTS, with its defaults (or the keyword
arguments in argv[3]), speaks one text through the server at argv[1] (its /v1 base URL);
prints what came out, and when the first audio came, as one JSON line."""

import asyncio
import json
import sys
import time

from livekit.plugins import openai


async def main(base_url: str, text: str, options: dict) -> dict:
    tts = openai.TTS(base_url=base_url, api_key="unused", **options)
    started, first, frames, error = time.perf_counter(), None, [], None
    try:
        async with tts.synthesize(text) as stream:
            async for event in stream:
                if first is None:
                    first = time.perf_counter() - started
                frames.append(event.frame)
    except Exception as e:  # what the framework raises is the result
        error = f"{type(e).__name__}: {e}"
    finally:
        await tts.aclose()
    return {"frames": len(frames), "samples": sum(f.samples_per_channel for f in frames),
            "rates": sorted({f.sample_rate for f in frames}), "channels": sorted({f.num_channels for f in frames}),
            "first_audio": first, "seconds": time.perf_counter() - started, "error": error}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
