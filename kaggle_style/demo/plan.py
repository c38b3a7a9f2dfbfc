"""Which image shows what, where: class totals, each site's share, and the sites themselves."""

from __future__ import annotations

import numpy as np

from kaggle_style.demo.scenes import CLASS_SHARE, Site, make_site
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES


def class_counts(n: int, rng: np.random.Generator | None = None) -> dict[str, int]:
    """Images per class for `n` images: the shares rounded, every class present, hog rarest."""
    share = np.array([CLASS_SHARE[c] for c in CLASSES])
    share = share / share.sum()
    counts = np.floor(share * n).astype(int)
    order = np.argsort(-(share * n - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    hog = CLASSES.index("hog")
    for i in range(len(CLASSES)):  # every class at least once, taken from the largest
        while counts[i] < 1 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[i] += 1
    others = np.delete(counts, hog)
    while counts[hog] > 1 and counts[hog] >= others.min():  # hog stays strictly rarest
        counts[hog] -= 1
        counts[int(np.argmax(counts))] += 1
        others = np.delete(counts, hog)
    return {c: int(k) for c, k in zip(CLASSES, counts, strict=True)}


def assign_sites(rng: np.random.Generator, sites: list[Site], n: int) -> list[tuple[str, str]]:
    """(site, label) per image: fixed class totals, every site used, each site's own mix."""
    if n < len(sites):
        raise ValueError(f"{n} images cannot cover {len(sites)} sites; lower the number of sites")
    remaining = np.array([class_counts(n)[c] for c in CLASSES], dtype=float)
    prior = np.array([s.prior for s in sites])
    size = rng.lognormal(0.0, 0.6, len(sites))
    rows = []
    for i, site in enumerate(sites):  # one image per site first, so no site is empty
        p = prior[i] * remaining
        c = int(rng.choice(len(CLASSES), p=p / p.sum()))
        remaining[c] -= 1
        rows.append((site.name, CLASSES[c]))
    for c, left in enumerate(remaining.astype(int)):
        p = size * prior[:, c]
        for s in rng.choice(len(sites), size=left, p=p / p.sum()):
            rows.append((sites[int(s)].name, CLASSES[c]))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def make_sites(seed: int, n_train_sites: int, n_test_sites: int) -> tuple[list[Site], list[Site]]:
    """Train and test sites, disjoint by construction, with scattered DrivenData-style names."""
    n = n_train_sites + n_test_sites
    numbers = np.random.default_rng([seed, 7]).choice(np.arange(1, 10 * n), n, replace=False)
    sites = [
        make_site(np.random.default_rng([seed, 8, i]), f"S{int(num):04d}")
        for i, num in enumerate(numbers)
    ]
    return sites[:n_train_sites], sites[n_train_sites:]
