"""How `workbench generate` decodes: a dataclass, checked on construction, stored in the run manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GenerationSettings:
    """max_new_tokens: tokens generated per prompt at most (>= 1).
    temperature:    0 = greedy (argmax); > 0 samples from softmax(logits / temperature).
    top_p:          nucleus sampling: sample among the most probable tokens whose mass reaches top_p (1 = all).
    seed:           seeds the sampling (every prompt starts from this seed: a prompt's output does not depend on
                    the prompts before it).
    stop:           strings that end a generation once the generated text contains one (the tokens that complete it
                    are kept); the model's end-of-sequence token always ends it.
    speculative:    None, or "mtp": self-speculative decoding, the checkpoint's MTP head drafting `draft_tokens`
                    tokens that the trunk verifies in one forward (generation/speculative.py).
    """

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    speculative: str | None = None
    draft_tokens: int = 2

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop))
        for name, least in (("max_new_tokens", 1), ("draft_tokens", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or self.temperature < 0:
            raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {self.temperature!r}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_p != 1 and self.temperature == 0:
            raise ValueError("top_p needs sampling: give a temperature > 0 (temperature 0 is greedy)")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty strings, got {self.stop!r}")
        if self.speculative not in (None, "mtp"):
            raise ValueError(f"speculative must be 'mtp' (or none), got {self.speculative!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationSettings":
        return cls(**data)
