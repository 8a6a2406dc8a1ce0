"""Models used across chapters, each in its own small module.

- ``dlcore.models.lenet``   ``LeNet`` for 8x8 digits and ``CNN1D`` for MNIST-1D signals (chapter 6)
- ``dlcore.models.resnet``  residual blocks and a small ``ResNet`` (chapter 6)

Import the module you need (``from dlcore.models.lenet import LeNet``); nothing is imported here.
"""
