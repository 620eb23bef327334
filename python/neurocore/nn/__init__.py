"""``neurocore.nn``: layers, containers and losses with PyTorch's names, defaults and state_dict
layouts."""
from .parameter import Parameter, Buffer
from .module import Module
from .container import Sequential, ModuleList, ModuleDict, ParameterList
from .linear import Linear, Identity, Flatten, Unflatten
from .activation import (ReLU, LeakyReLU, ELU, SELU, GELU, SiLU, Mish, Softplus, Hardtanh, ReLU6, Sigmoid, Tanh,
                         Softmax, LogSoftmax, PReLU, Hardswish, Hardsigmoid, LogSigmoid, Softmin, Softmax2d, Softsign,
                         Tanhshrink, Threshold, CELU, GLU, Hardshrink, Softshrink)
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .pooling import MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d
from ._resample import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm, GroupNorm, LocalResponseNorm
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .padding import (ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d,
                      ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d,
                      CircularPad1d, CircularPad2d, CircularPad3d)
from .pixelshuffle import PixelShuffle, PixelUnshuffle
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
