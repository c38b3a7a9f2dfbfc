"""The competition's eight classes as taxa, at the rank each class names.

Camtrap DP's `taxonRank` allows kingdom, phylum, class, order, family, genus, species and
subspecies only, so a class is mapped to the lowest of those ranks that holds every animal the
class holds in Taï National Park:

- antelope_duiker: Bovidae (family). Duikers are the subfamily Cephalophinae, a rank Camtrap DP
  cannot name, and the class also holds Taï's other antelopes (bongo, bushbuck, royal antelope).
- civet_genet: Viverridae (family): civets and genets. The African palm civet (Nandinia, family
  Nandiniidae) is labelled civet_genet too; no allowed rank holds both without the leopard.
- monkey_prosimian: Primates (order): monkeys, chimpanzees, galagos and pottos.
- blank: no taxon (observationType `blank`).
"""

from __future__ import annotations

from dataclasses import dataclass

BLANK = "blank"


@dataclass(frozen=True)
class Taxon:
    scientific_name: str
    rank: str
    vernacular: str  # English
    higher: tuple[tuple[str, str], ...]  # (rank, name) from kingdom down, the taxon excluded

    def coverage(self) -> dict[str, object]:
        """The taxon as an entry of a Camtrap DP package's `taxonomic` list."""
        return {
            "scientificName": self.scientific_name,
            "taxonRank": self.rank,
            **dict(self.higher),
            "vernacularNames": {"eng": self.vernacular},
        }


_MAMMAL = (("kingdom", "Animalia"), ("phylum", "Chordata"), ("class", "Mammalia"))

TAXA: dict[str, Taxon] = {
    "antelope_duiker": Taxon(
        "Bovidae", "family", "antelopes and duikers", (*_MAMMAL, ("order", "Artiodactyla"))
    ),
    "bird": Taxon("Aves", "class", "birds", (("kingdom", "Animalia"), ("phylum", "Chordata"))),
    "civet_genet": Taxon(
        "Viverridae", "family", "civets and genets", (*_MAMMAL, ("order", "Carnivora"))
    ),
    "hog": Taxon("Suidae", "family", "hogs", (*_MAMMAL, ("order", "Artiodactyla"))),
    "leopard": Taxon(
        "Panthera pardus",
        "species",
        "leopard",
        (*_MAMMAL, ("order", "Carnivora"), ("family", "Felidae"), ("genus", "Panthera")),
    ),
    "monkey_prosimian": Taxon("Primates", "order", "monkeys and prosimians", _MAMMAL),
    "rodent": Taxon("Rodentia", "order", "rodents", _MAMMAL),
}


def taxon_of(name: str) -> Taxon | None:
    """The class's taxon; None for blank."""
    return TAXA.get(name)
