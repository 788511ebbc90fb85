"""The shared knowledge graph: data set cards, alignment, federation planning, provenance."""
