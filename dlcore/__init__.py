"""dlcore: the small, tested library behind the executable deep-learning textbook.

Each module holds one concept, in the order the book introduces it:

- ``dlcore.device``  devices, seeds and the cpu/gpu size profile
- ``dlcore.data``    offline datasets, splits, loaders and opt-in hashed downloads
- ``dlcore.plot``    the book's figure style and plotting helpers
- ``dlcore.train``   a small training loop (``fit``/``evaluate``/``History``)
- ``dlcore.widgets`` interactive demos that also leave a static figure for the HTML book
- ``dlcore.book``    ``glue``: computed numbers into the book's text
- ``dlcore.timing``  ``best_time``/``median_time`` for the timing cells
- ``dlcore.functional``  NumPy activations, softmax and losses with their derivatives (chapters 2-3)
- ``dlcore.perceptron``  the perceptron learner and its mistake bound (chapter 2)
- ``dlcore.gradcheck``   finite-difference gradient checks (chapters 0 and 4, and the tests)
- ``dlcore.scalar``  the scalar autograd engine ``Value`` (chapter 4)
- ``dlcore.autograd`` the NumPy ``Tensor`` with reverse-mode autodiff, checked against PyTorch (chapter 4)
- ``dlcore.losses``  NumPy losses from likelihoods (MSE, binary and categorical cross-entropy, label smoothing)
  with their gradients (chapter 5)
- ``dlcore.optim``   SGD, momentum, Nesterov, RMSprop, Adam, AdamW and learning-rate schedules (chapter 5)
- ``dlcore.init``    Xavier/He variances, samplers and ``init_`` for PyTorch models (chapter 5)
- ``dlcore.layers``  dropout, batch norm and layer norm with hand-derived backward passes (chapter 5)
- ``dlcore.conv``    NumPy convolution and pooling (im2col) with their backward passes (chapter 6)
- ``dlcore.text``    character language-model tools: batches, evaluation, sampling, n-gram baselines (chapter 7)
- ``dlcore.recurrent`` NumPy RNN, LSTM and GRU with hand-derived backpropagation through time (chapter 7)
- ``dlcore.attention`` scaled dot-product and multi-head attention, masks, sinusoidal and rotary positions (chapter 8)
- ``dlcore.hardware`` FLOP and byte counts, the roofline, measured GEMM throughput, peak FLOP/s, MFU (chapter 8)
- ``dlcore.metrics`` sample quality: Fréchet distance, mode coverage, the cached digits judge (chapters 9-11)
- ``dlcore.gan``     GAN losses (saturating and non-saturating, on logits), PacGAN packing, batched MLPs (chapter 10)
- ``dlcore.diffusion`` noise schedules, the closed-form forward process, the DDPM loss, DDPM and DDIM samplers,
  classifier-free guidance, time embeddings and an MLP denoiser (chapter 11)
- ``dlcore.models``  models used across chapters: ``lenet`` (LeNet, CNN1D), ``resnet`` (chapter 6), ``charrnn``,
  ``seq2seq`` (chapter 7), ``gpt``, ``vit`` (chapter 8), ``vae`` (chapter 9), ``gan`` (chapter 10), ``unet``
  (chapter 11)

Import the module you need (``from dlcore import data``); nothing heavy is imported here.
"""

__version__ = "0.5.0"
