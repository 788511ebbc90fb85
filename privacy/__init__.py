"""Privacy primitives: differential privacy, the privacy-budget ledger, homomorphic encryption.

Nothing here imports Flower, so an institution's auditor can read it on its own.
"""
