"""``keras.layers``: Keras 3 layers on neurocore's C++ kernels (channels-last images)."""
from .base import Layer, Input, InputLayer, KerasTensor
from .core import Dense, Activation, Dropout, Flatten, Reshape, Embedding, Masking
from .conv import Conv1D, Conv2D
from .pooling import (MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPool2D,
                      AvgPool2D, GlobalAvgPool2D)
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import SimpleRNN, LSTM, GRU
from .wrappers import Bidirectional, TimeDistributed
from .attention import MultiHeadAttention
from .merging import Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, add, concatenate

Convolution2D = Conv2D
Convolution1D = Conv1D
from .preprocessing import RandomFlip, RandomRotation, RandomTranslation
