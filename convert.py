"""`python convert.py ...`: the same as `python -m mlx_qwen3tts.convert ...`."""

from mlx_qwen3tts.convert import main

if __name__ == "__main__":
    main()
