"""``neurocore.nn``: layers, containers and losses with PyTorch's names, defaults and state_dict
layouts."""
from .parameter import Parameter, Buffer
from .module import Module
from .container import Sequential, ModuleList, ModuleDict, ParameterList
from .linear import Linear, Identity, Flatten, Unflatten
from .activation import (ReLU, LeakyReLU, ELU, SELU, GELU, SiLU, Mish, Softplus, Hardtanh, ReLU6, Sigmoid, Tanh,
                         Softmax, LogSoftmax)
from .dropout import Dropout, Dropout2d
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .pooling import MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d
from ._resample import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from .attention import MultiheadAttention
from .transformer import (Transformer, TransformerEncoder, TransformerDecoder, TransformerEncoderLayer,
                          TransformerDecoderLayer)
from .sparse import Embedding
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell
from .sync_batchnorm import SyncBatchNorm
from .loss import (MSELoss, L1Loss, HuberLoss, SmoothL1Loss, CrossEntropyLoss, NLLLoss, BCELoss,
                   BCEWithLogitsLoss, KLDivLoss, MarginRankingLoss, CosineEmbeddingLoss, TripletMarginLoss,
                   PoissonNLLLoss, GaussianNLLLoss, CTCLoss)
from .distance import PairwiseDistance, CosineSimilarity
from .parallel import DataParallel
from . import functional, init, utils, parallel, modules
