"""Drawn animals: one recognisable silhouette per class, in a random pose and coat."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from kaggle_style.demo.scenes import Color, Pen, jitter, shade

# Animal width as a share of the frame width: small, as in real camera-trap frames.
WIDTH_SHARE: dict[str, tuple[float, float]] = {
    "antelope_duiker": (0.08, 0.18),
    "bird": (0.05, 0.10),
    "civet_genet": (0.09, 0.17),
    "hog": (0.09, 0.18),
    "leopard": (0.10, 0.20),
    "monkey_prosimian": (0.06, 0.13),
    "rodent": (0.045, 0.08),
}
# Width / height of each animal's drawing.
ASPECT: dict[str, float] = {
    "antelope_duiker": 1.3,
    "bird": 1.0,
    "civet_genet": 2.4,
    "hog": 1.5,
    "leopard": 2.0,
    "monkey_prosimian": 0.9,
    "rodent": 1.8,
}


def _spots(
    pen: Pen,
    rng: np.random.Generator,
    n: int,
    box: tuple[float, float, float, float],
    radius: tuple[float, float],
    aspect: float,
    color: Color,
    ring: bool,
) -> None:
    """Dark marks inside an ellipse (cx, cy, rx, ry): solid spots or open rosettes."""
    cx, cy, rx, ry = box
    for _ in range(n):
        angle, dist = rng.uniform(0, 2 * math.pi), math.sqrt(rng.uniform(0, 0.8))
        x, y = cx + rx * dist * math.cos(angle), cy + ry * dist * math.sin(angle)
        r = rng.uniform(*radius)
        if ring:
            pen.ellipse(x, y, r, r * aspect, None, outline=color, width=r * 0.45)
        else:
            pen.ellipse(x, y, r, r * aspect * 0.8, color)


def _curve(
    start: tuple[float, float], control: tuple[float, float], end: tuple[float, float], n: int = 12
) -> list[tuple[float, float]]:
    """Points on a quadratic Bezier: tails that bend."""
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = np.array(start), np.array(control), np.array(end)
    pts = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
    return [(float(x), float(y)) for x, y in pts]


def _draw_antelope(pen: Pen, rng: np.random.Generator) -> None:
    """Red-brown ellipse on thin legs, neck, small head with spike horns, white tail flag."""
    coat = jitter(rng, (150, 82, 42))
    dark = shade(coat, 0.5)
    for top, bottom in ((0.27, 0.25), (0.34, 0.35), (0.57, 0.6), (0.64, 0.66)):
        pen.line([(top, 0.5), (bottom, 0.97)], 0.026, dark)
    pen.ellipse(0.16, 0.38, 0.03, 0.06, (235, 230, 220))
    pen.ellipse(0.45, 0.45, 0.3, 0.17, coat)
    pen.line([(0.22, 0.32), (0.68, 0.31)], 0.03, dark)
    pen.polygon([(0.64, 0.38), (0.73, 0.18), (0.81, 0.2), (0.75, 0.48)], coat)
    pen.ellipse(0.82, 0.22, 0.085, 0.07, coat)
    pen.ellipse(0.9, 0.25, 0.03, 0.035, dark)
    pen.line([(0.79, 0.16), (0.75, 0.03)], 0.016, dark)
    pen.ellipse(0.74, 0.13, 0.025, 0.05, coat)


def _draw_bird(pen: Pen, rng: np.random.Generator) -> None:
    """Small body with a dark wedge wing and tail, round head, orange beak and legs."""
    plumage = jitter(rng, [(60, 70, 95), (115, 90, 55), (45, 45, 50)][int(rng.integers(3))])
    wing = shade(plumage, 0.55)
    orange = jitter(rng, (230, 140, 40), 0.08)
    pen.line([(0.45, 0.7), (0.42, 0.97)], 0.025, orange)
    pen.line([(0.53, 0.7), (0.56, 0.97)], 0.025, orange)
    pen.polygon([(0.3, 0.5), (0.02, 0.6), (0.05, 0.76), (0.32, 0.64)], wing)
    pen.ellipse(0.46, 0.56, 0.25, 0.17, plumage)
    pen.ellipse(0.72, 0.33, 0.11, 0.11, plumage)
    pen.polygon([(0.8, 0.29), (0.98, 0.35), (0.8, 0.4)], orange)
    if rng.random() < 0.35:  # wings raised
        pen.polygon([(0.35, 0.5), (0.6, 0.48), (0.2, 0.02)], wing)
    else:
        pen.polygon([(0.64, 0.46), (0.36, 0.44), (0.1, 0.72)], wing)
    pen.ellipse(0.75, 0.3, 0.025, 0.025, (240, 240, 240))


def _draw_civet(pen: Pen, rng: np.random.Generator) -> None:
    """Long low buff body with black spots, pointed masked face, long ringed tail."""
    coat = jitter(rng, (180, 165, 130))
    dark = jitter(rng, (35, 30, 25), 0.2)
    tail = _curve((0.2, 0.45), (0.06, 0.4), (0.01, 0.8), 10)
    for i in range(len(tail) - 1):
        pen.line([tail[i], tail[i + 1]], 0.05, dark if i % 2 else coat)
    for x in (0.26, 0.31, 0.55, 0.6):
        pen.line([(x, 0.55), (x + 0.01, 0.95)], 0.03, dark)
    pen.ellipse(0.42, 0.48, 0.27, 0.19, coat)
    _spots(
        pen,
        rng,
        int(rng.integers(12, 20)),
        (0.42, 0.48, 0.25, 0.17),
        (0.012, 0.022),
        2.4,
        dark,
        ring=False,
    )
    pen.line([(0.2, 0.32), (0.64, 0.32)], 0.02, dark)
    pen.ellipse(0.7, 0.45, 0.07, 0.16, coat)
    pen.polygon([(0.68, 0.34), (0.92, 0.5), (0.68, 0.6)], coat)
    pen.ellipse(0.78, 0.45, 0.035, 0.07, dark)
    pen.ellipse(0.66, 0.3, 0.025, 0.07, coat)


def _draw_hog(pen: Pen, rng: np.random.Generator) -> None:
    """Big rounded dark-grey body on short thick legs, pale flat snout, pointed ears."""
    coat = jitter(rng, (62, 58, 58), 0.2)
    dark = shade(coat, 0.6)
    snout = jitter(rng, (150, 115, 110), 0.1)
    for x in (0.23, 0.32, 0.58, 0.67):
        pen.line([(x, 0.65), (x, 0.97)], 0.06, dark)
    pen.ellipse(0.45, 0.5, 0.36, 0.32, coat)
    pen.line(_curve((0.15, 0.3), (0.4, 0.08), (0.7, 0.3), 8), 0.03, dark)
    pen.ellipse(0.78, 0.56, 0.13, 0.18, coat)
    pen.polygon([(0.7, 0.42), (0.74, 0.22), (0.79, 0.42)], dark)
    pen.ellipse(0.93, 0.65, 0.05, 0.09, snout)
    pen.ellipse(0.94, 0.63, 0.012, 0.02, dark)
    pen.ellipse(0.94, 0.69, 0.012, 0.02, dark)
    pen.line([(0.86, 0.74), (0.9, 0.66)], 0.012, (235, 230, 215))


def _draw_leopard(pen: Pen, rng: np.random.Generator) -> None:
    """Golden body with dark rosettes, round head, long tail curling up at a dark tip."""
    coat = jitter(rng, (212, 165, 70))
    dark = jitter(rng, (45, 32, 15), 0.2)
    tail = _curve((0.2, 0.42), (0.0, 0.55), (0.04, 0.9), 10)
    pen.line(tail, 0.035, coat)
    pen.line(tail[-3:], 0.037, dark)
    for x in (0.27, 0.33, 0.6, 0.66):
        pen.line([(x, 0.55), (x, 0.96)], 0.045, coat)
    pen.ellipse(0.46, 0.47, 0.3, 0.2, coat)
    _spots(
        pen,
        rng,
        int(rng.integers(14, 24)),
        (0.46, 0.47, 0.28, 0.18),
        (0.018, 0.028),
        2.0,
        dark,
        ring=True,
    )
    pen.ellipse(0.8, 0.36, 0.09, 0.18, coat)
    pen.ellipse(0.76, 0.2, 0.025, 0.05, coat)
    pen.ellipse(0.84, 0.2, 0.025, 0.05, coat)
    _spots(pen, rng, 6, (0.8, 0.36, 0.07, 0.14), (0.006, 0.01), 2.0, dark, ring=False)


def _draw_monkey(pen: Pen, rng: np.random.Generator) -> None:
    """Upright body, bent limbs, round head with a pale face, long tail curving up."""
    fur = jitter(rng, [(60, 48, 38), (105, 100, 92), (35, 32, 30)][int(rng.integers(3))])
    face = jitter(rng, (190, 160, 130), 0.1)
    pen.line(_curve((0.42, 0.72), (-0.1, 0.95), (0.08, 0.2), 14), 0.035, fur)
    pen.line([(0.45, 0.68), (0.36, 0.84), (0.44, 0.98)], 0.05, fur)
    pen.line([(0.6, 0.68), (0.7, 0.84), (0.63, 0.98)], 0.05, fur)
    pen.ellipse(0.52, 0.55, 0.16, 0.22, fur)
    pen.line([(0.6, 0.42), (0.78, 0.58), (0.8, 0.76)], 0.045, fur)
    pen.ellipse(0.6, 0.24, 0.14, 0.14 * 0.9, fur)
    pen.ellipse(0.65, 0.26, 0.08, 0.08 * 0.9, face)
    pen.ellipse(0.63, 0.24, 0.015, 0.015, (20, 15, 10))
    pen.ellipse(0.69, 0.24, 0.015, 0.015, (20, 15, 10))


def _draw_rodent(pen: Pen, rng: np.random.Generator) -> None:
    """A tiny brown blob with a pointed nose, round ear and thin pink tail."""
    fur = jitter(rng, (125, 92, 58))
    pen.line(_curve((0.22, 0.75), (0.1, 0.95), (0.0, 0.8), 8), 0.02, jitter(rng, (190, 150, 140)))
    pen.ellipse(0.45, 0.63, 0.28, 0.3, fur)
    pen.ellipse(0.72, 0.6, 0.14, 0.22, fur)
    pen.polygon([(0.78, 0.5), (0.97, 0.68), (0.78, 0.74)], fur)
    pen.ellipse(0.66, 0.36, 0.06, 0.11, shade(fur, 1.25))
    pen.ellipse(0.78, 0.55, 0.02, 0.035, (15, 10, 10))
    pen.line([(0.35, 0.88), (0.35, 0.97)], 0.04, shade(fur, 0.6))
    pen.line([(0.6, 0.88), (0.62, 0.97)], 0.04, shade(fur, 0.6))


DRAWERS: dict[str, Callable[[Pen, np.random.Generator], None]] = {
    "antelope_duiker": _draw_antelope,
    "bird": _draw_bird,
    "civet_genet": _draw_civet,
    "hog": _draw_hog,
    "leopard": _draw_leopard,
    "monkey_prosimian": _draw_monkey,
    "rodent": _draw_rodent,
}


def draw_animal(rng: np.random.Generator, label: str, width: int) -> Image.Image:
    """An RGBA animal `width` px wide in a random pose (flip, stretch, tilt)."""
    aspect = ASPECT[label] * rng.uniform(0.9, 1.1)
    canvas_w = int(np.clip(4 * width, 96, 512))  # drawn large, then shrunk: smooth edges
    canvas = Image.new("RGBA", (canvas_w, max(8, round(canvas_w / aspect))), (0, 0, 0, 0))
    DRAWERS[label](Pen(canvas), rng)
    canvas = canvas.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BICUBIC, expand=True)
    if rng.random() < 0.5:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    height = max(2, round(width * canvas.height / canvas.width))
    return canvas.resize((max(2, width), height), Image.Resampling.LANCZOS)
