"""Models used across chapters, each in its own small module.

- ``dlcore.models.lenet``   ``LeNet`` for 8x8 digits and ``CNN1D`` for MNIST-1D signals (chapter 6)
- ``dlcore.models.resnet``  residual blocks and a small ``ResNet`` (chapter 6)
- ``dlcore.models.charrnn`` ``CharRNN``, a character language model on an RNN, LSTM or GRU (chapter 7)
- ``dlcore.models.seq2seq`` ``Seq2Seq``, an encoder-decoder without attention, and the reversal task (chapter 7)
- ``dlcore.models.gpt``     ``GPT``, a decoder-only transformer with a KV cache; ``Block``; parameter and FLOP counts
  (chapter 8)
- ``dlcore.models.vit``     ``ViT``, a Vision Transformer for small images built from ``gpt.Block`` (chapter 8)

Import the module you need (``from dlcore.models.lenet import LeNet``); nothing is imported here.
"""
