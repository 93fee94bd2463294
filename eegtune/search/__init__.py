"""The search: settings, one trial, workers, samplers and pruners, studies and storages.

Empty on purpose: import the module you need.
"""
