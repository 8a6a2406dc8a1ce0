"""Models used across chapters, each in its own small module.

- ``dlcore.models.lenet``   ``LeNet`` for 8x8 digits and ``CNN1D`` for MNIST-1D signals (chapter 6)
- ``dlcore.models.resnet``  residual blocks and a small ``ResNet`` (chapter 6)
- ``dlcore.models.charrnn`` ``CharRNN``, a character language model on an RNN, LSTM or GRU (chapter 7)
- ``dlcore.models.seq2seq`` ``Seq2Seq``, an encoder-decoder without attention, and the reversal task (chapter 7)
- ``dlcore.models.gpt``     ``GPT``, a decoder-only transformer with a KV cache; ``Block``; parameter and FLOP counts
  (chapter 8)
- ``dlcore.models.vit``     ``ViT``, a Vision Transformer for small images built from ``gpt.Block`` (chapter 8)
- ``dlcore.models.vae``     ``ConvVAE`` and ``ConvAutoencoder`` for 8x8 digits; ``reparameterize``, ``kl_normal``,
  ``elbo_loss`` (chapter 9)
- ``dlcore.models.gan``     DCGAN-style ``Generator`` and ``Discriminator`` for 8x8 digits, optionally class-conditional
  (chapter 10)
- ``dlcore.models.unet``    ``UNet``, a small U-Net with time and class embeddings for diffusion on digits (chapter 11)

Import the module you need (``from dlcore.models.lenet import LeNet``); nothing is imported here.
"""
