"""Datasets: the model-ready ``Dataset``, its sources, and one loader per kind of data.

Empty on purpose, so that ``eegtune.data.sources`` imports without numpy (the CLI parses
``--dataset`` with it before anything heavy loads).
"""
