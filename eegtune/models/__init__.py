"""The networks (EEGNet, DeepConvNet) and ``build_model``; see ``eegtune.models.networks``."""
