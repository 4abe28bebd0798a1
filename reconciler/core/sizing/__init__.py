"""Sizing: which GPU shape serves a Deployment's load, by a roofline estimate (pure).

``gpus`` is the catalogue of GPU types as data; ``roofline`` turns a model's shape, a GPU
type and the expected load into GPUs per worker, workers and predicted latencies, or says
by how much the targets are out of reach.
"""
