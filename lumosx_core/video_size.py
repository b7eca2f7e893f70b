"""Video sizes, the one home of the arithmetic from pixels to latents to tokens (Wan 2.1: the
VAE downsamples by 8 in space and by 4 in time after the first frame, 16 latent channels; the
DiT cuts each latent frame into 2x2 patches)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

LATENT_CHANNELS = 16
SPACE_SCALE = 8
TIME_SCALE = 4
PATCH = 2


def latent_frames(length: int) -> int:
    """Latent frames of a ``length``-frame video: the first frame alone, then one per 4."""
    return (int(length) - 1) // TIME_SCALE + 1


@dataclass(frozen=True)
class VideoSize:
    """A video batch in pixels: ``batch`` videos of ``length`` frames of ``width x height``."""

    width: int
    height: int
    length: int
    batch: int = 1

    @classmethod
    def of_latent(cls, shape: Sequence[int]) -> "VideoSize":
        """The size a video LATENT ``[B, 16, T, h, w]`` decodes to."""
        b, _, t, h, w = (int(v) for v in shape)
        return cls(w * SPACE_SCALE, h * SPACE_SCALE, (t - 1) * TIME_SCALE + 1, b)

    @property
    def latent_shape(self) -> Tuple[int, int, int, int, int]:
        """``[batch, 16, T, height/8, width/8]``."""
        return (self.batch, LATENT_CHANNELS, latent_frames(self.length),
                self.height // SPACE_SCALE, self.width // SPACE_SCALE)

    @property
    def grid(self) -> Tuple[int, int, int]:
        """The DiT's token grid of one video: ``(T, Hp, Wp)`` = latent frames and patches."""
        step = SPACE_SCALE * PATCH
        return latent_frames(self.length), self.height // step, self.width // step

    @property
    def tokens(self) -> int:
        """Tokens the DiT attends over for one video (references not counted)."""
        t, hp, wp = self.grid
        return t * hp * wp
