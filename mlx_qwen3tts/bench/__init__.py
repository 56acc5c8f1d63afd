"""The benchmark and its tools: random checkpoints of the real shapes, the kernel floor, the
official implementation and mlx-audio timed side by side, and the quantization quality report."""

from .run import benchmark, main, quantize

__all__ = ["benchmark", "main", "quantize"]
