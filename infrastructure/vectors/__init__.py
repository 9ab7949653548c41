"""Adapters of the vector index port (``domain.vectors.ports.VectorIndex``) and what they share: hybrid ranking
(``ranking``) and attribute filters evaluated in Python (``filters``)."""
