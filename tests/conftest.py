import logging
import sys
from pathlib import Path

# Test helpers (reference.py, tiny.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("mlx_qwen3tts").setLevel(logging.INFO)
