"""The Qwen2 byte-level BPE text tokenizer, loaded with `tokenizers` from a checkpoint folder."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

# Qwen2's own pre-tokenizer split (contractions, letter runs, single digits, symbol runs, spaces).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class TextTokenizer:
    """Encodes prompt strings to ids; special tokens such as `<|im_start|>` match whole."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer

    @classmethod
    def from_folder(cls, folder: str | Path) -> TextTokenizer:
        folder = Path(folder)
        if (folder / "tokenizer.json").exists():
            return cls(Tokenizer.from_file(str(folder / "tokenizer.json")))
        for name in ("vocab.json", "merges.txt"):
            if not (folder / name).exists():
                raise FileNotFoundError(f"text tokenizer file {name!r} is missing from {folder}")
        bpe = models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
        tok = Tokenizer(bpe)
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        config_path = folder / "tokenizer_config.json"
        added = json.loads(config_path.read_text("utf-8")).get("added_tokens_decoder", {}) if config_path.exists() else {}
        # Added tokens must keep their checkpoint ids: add them in id order.
        for _, spec in sorted(added.items(), key=lambda kv: int(kv[0])):
            token = AddedToken(spec["content"], special=spec.get("special", False), normalized=False,
                               lstrip=spec.get("lstrip", False), rstrip=spec.get("rstrip", False),
                               single_word=spec.get("single_word", False))
            tok.add_special_tokens([token]) if token.special else tok.add_tokens([token])
        for key, spec in added.items():
            if tok.token_to_id(spec["content"]) != int(key):
                raise ValueError(f"tokenizer in {folder}: added token {spec['content']!r} does not land on id {key}")
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def units(self, text: str) -> list[tuple[int, list[int]]]:
        """The ids of `text` grouped by pre-token (an added token is a unit of its own), each
        unit with the character offset where it starts."""
        enc = self._tok.encode(text, add_special_tokens=False)
        units: list[tuple[int, list[int]]] = []
        last = None
        for token, word, (start, _) in zip(enc.ids, enc.word_ids, enc.offsets):
            if word is None or word != last:
                units.append((start, []))
            units[-1][1].append(token)
            last = word
        return units

    def added_tokens(self) -> list[str]:
        """The added tokens' texts (`<|im_end|>`...), which match whole wherever they appear."""
        return [t.content for t in self._tok.get_added_tokens_decoder().values()]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)

    def token_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)
