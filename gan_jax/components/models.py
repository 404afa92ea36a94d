"""Flax linen generators and discriminators (MLP and DCGAN), built from the static config.

Every module takes an optional integer `labels` array (a conditional GAN when `num_classes > 0`: the
label's one-hot code is concatenated to G's noise and to D's input) and a `train` flag (dropout, batch
norm). Discriminators return (logit, features).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.core.config import Config
from gan_jax.errors import ConfigError


def _leaky_relu(slope: float) -> Callable:
    # max(x, a*x) equals leaky_relu for a <= 1 and fuses into fewer XLA ops than a select.
    if slope <= 1.0:
        return lambda x: jnp.maximum(x, slope * x)
    return lambda x: nn.leaky_relu(x, slope)


ACTIVATIONS: dict[str, Callable[[float], Callable]] = {
    "leaky_relu": _leaky_relu,
    "relu": lambda _: nn.relu,
    "tanh": lambda _: jnp.tanh,
    "sigmoid": lambda _: nn.sigmoid,
    "elu": lambda _: nn.elu,
    "gelu": lambda _: nn.gelu,
    "swish": lambda _: nn.swish,
    "linear": lambda _: (lambda x: x),
}

INITIALIZERS = {
    "glorot_uniform": nn.initializers.glorot_uniform(),  # TF1 tf.layers.dense default ("Xavier")
    "glorot_normal": nn.initializers.glorot_normal(),
    "lecun_normal": nn.initializers.lecun_normal(),  # flax default
    "he_normal": nn.initializers.he_normal(),
    # The R4 notebook's "xavier_init": N(0, 2 / fan_in), untruncated.
    "r4_xavier": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
}


def activation(name: str, negative_slope: float = 0.2) -> Callable:
    return ACTIVATIONS[name](negative_slope)


# matmul and convolution precisions: parameters, their updates and the outputs stay float32
PRECISIONS = {"fp32": jnp.float32, "bf16": jnp.bfloat16}

# how Conv2x and ConvTranspose2x compute: the same parameters, the same numbers to float32 rounding
CONVOLUTIONS = {"windows": "each output's window copied out, then one matmul",
                "xla": "lax.conv_general_dilated and lax.conv_transpose, the device's own convolution kernels"}


def _dense(features: int, init: str, name: str | None = None, dtype=jnp.float32) -> nn.Dense:
    return nn.Dense(features, kernel_init=INITIALIZERS[init], bias_init=nn.initializers.zeros, name=name, dtype=dtype)


SPECTRAL = "spectral"  # the variable collection of spectral norm's power-iteration vectors: D's only state


def spectral(layer: nn.Module, on: bool) -> Callable:
    """`layer`, or with spectral normalization (Miyato et al. 2018): its kernel divided by an estimate of
    its largest singular value, from one power iteration per call. The iteration's vector is stored (in
    the SPECTRAL collection) only when that collection is mutable: in D's updates, not in G's."""
    if not on:
        return layer
    normalized = nn.SpectralNorm(layer, collection_name=SPECTRAL)
    return lambda x: normalized(x, update_stats=normalized.is_mutable_collection(SPECTRAL))


def pack(x: jax.Array, m: int, image_shape: Sequence[int] | None = None) -> jax.Array:
    """PacGAN's packing (Lin et al. 2018): [n, d] samples -> [n / m, m * d], m consecutive samples
    concatenated; for images (flat, of `image_shape`) along the channel axis, so a convolutional D sees
    one image of m * channels channels."""
    if m == 1:
        return x
    n = x.shape[0] // m
    if image_shape is None:
        return x.reshape(n, m * x.shape[1])
    h, w, c = image_shape
    return x.reshape(n, m, h, w, c).transpose(0, 2, 3, 1, 4).reshape(n, m * x.shape[1])


def with_label(h: jax.Array, labels: jax.Array | None, num_classes: int) -> jax.Array:
    """Concatenate the labels' one-hot code to the last axis of `h` (broadcast over any spatial axes)."""
    if num_classes == 0:
        return h
    if labels is None:
        raise ValueError(f"this model is conditional ({num_classes} classes): pass labels")
    code = jax.nn.one_hot(labels, num_classes, dtype=h.dtype)
    code = code.reshape(code.shape[:1] + (1,) * (h.ndim - 2) + code.shape[1:])
    return jnp.concatenate([h, jnp.broadcast_to(code, h.shape[:-1] + (num_classes,))], axis=-1)


class Generator(nn.Module):
    """z -> x: hidden dense layers with `activation`, then a dense `out_dim` layer with `output_activation`."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    output_activation: str = "linear"
    kernel_init: str = "glorot_uniform"
    num_classes: int = 0
    dtype: jnp.dtype = jnp.float32  # of the matmuls

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = False) -> jax.Array:
        act = activation(self.activation, self.negative_slope)
        h = with_label(z, labels, self.num_classes)
        for width in self.hidden:
            h = act(_dense(width, self.kernel_init, dtype=self.dtype)(h))
        out = _dense(self.out_dim, self.kernel_init, dtype=self.dtype)(h)
        return activation(self.output_activation)(out.astype(jnp.float32))


class Discriminator(nn.Module):
    """x -> (logit, features). Dropout, when set, follows each hidden activation in training mode."""

    hidden: Sequence[int]
    feature_dim: int | None = None
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    dropout: float = 0.0
    kernel_init: str = "glorot_uniform"
    num_classes: int = 0
    spectral_norm: bool = False
    dtype: jnp.dtype = jnp.float32  # of the matmuls

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None,
                 train: bool = False) -> tuple[jax.Array, jax.Array]:
        act = activation(self.activation, self.negative_slope)
        dense = lambda width, name=None: spectral(  # noqa: E731
            _dense(width, self.kernel_init, name, self.dtype), self.spectral_norm)
        h = with_label(x, labels, self.num_classes)
        for width in self.hidden:
            h = act(dense(width)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        features = h if self.feature_dim is None else dense(self.feature_dim, "features")(h)
        logit = dense(1, "logit")(features)
        return logit[..., 0].astype(jnp.float32), features.astype(jnp.float32)


NHWC = ("NHWC", "HWIO", "NHWC")  # images, kernels and outputs as flax lays them out


def _patches(x: jax.Array, size: int, stride: int, out_h: int, out_w: int) -> jax.Array:
    """[n, h, w, c] (already padded) -> [n, out_h, out_w, size*size*c]: each output position's window,
    ordered (row tap, column tap, channel) like a flattened HWIO kernel."""
    taps = [x[:, a:a + stride * (out_h - 1) + 1:stride, b:b + stride * (out_w - 1) + 1:stride]
            for a in range(size) for b in range(size)]
    return jnp.concatenate(taps, axis=-1)


# The two convolutions below are written, by default, as window extraction + one matmul (im2col). Why:
# inside a lax.scan, XLA:CPU lays out the weight-gradient convolutions so that they miss its fast
# convolution kernels; a DCGAN step ran about 14x slower in a scan than alone (3.8 s vs 0.28 s), and the
# dcgan preset trained 2.5 seed-steps/s with XLA's convolutions against 22.5 (docs/speed.md). On a GPU,
# XLA's convolutions (cuDNN) may win: `convolutions="xla"` uses them, and the GPU suite times both. Tests
# check every form equals nn.Conv / nn.ConvTranspose, and trains to the same numbers.
class Conv2x(nn.Module):
    """A 4x4, stride-2, 'SAME' convolution, equal to `nn.Conv(features, (4, 4), (2, 2), "SAME")` with
    the same parameters, for even heights and widths."""

    features: int
    dtype: jnp.dtype = jnp.float32  # of the matmul
    convolutions: str = "windows"  # a key of CONVOLUTIONS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, height, width, channels = x.shape
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        if self.convolutions == "xla":
            y = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=NHWC)
        else:
            windows = _patches(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 4, 2, height // 2, width // 2)
            y = windows @ kernel.reshape(16 * channels, self.features)
        return y + bias.astype(self.dtype)


class ConvTranspose2x(nn.Module):
    """A 4x4, stride-2, 'SAME' transposed convolution, equal to `nn.ConvTranspose(features, (4, 4),
    (2, 2), "SAME")` with the same kernel; by default in sub-pixel form: one 2x2 window matmul gives the
    four output phases, which are then interleaved."""

    features: int
    use_bias: bool = True
    dtype: jnp.dtype = jnp.float32  # of the matmul
    convolutions: str = "windows"  # a key of CONVOLUTIONS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features))
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        y = (jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=NHWC)
             if self.convolutions == "xla" else self._sub_pixel(x, kernel))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y

    def _sub_pixel(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
        n, height, width, channels = x.shape
        # kernel tap 2a + p (rows; likewise columns) feeds output phase p from input offset a - 1 + p
        phases = kernel.reshape(2, 2, 2, 2, channels, self.features).transpose(0, 2, 4, 1, 3, 5)
        windows = _patches(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 2, 1, height + 1, width + 1)
        y = (windows @ phases.reshape(4 * channels, 4 * self.features)).reshape(
            n, height + 1, width + 1, 2, 2, self.features)
        rows = [jnp.stack([y[:, p:p + height, q:q + width, p, q] for q in (0, 1)], axis=3) for p in (0, 1)]
        return jnp.stack(rows, axis=2).reshape(n, 2 * height, 2 * width, self.features)


class ConvGenerator(nn.Module):
    """DCGAN generator: z -> dense to a (h/2^k, w/2^k, hidden[0]) map, then k stride-2 transposed convs
    (the last to the image's channels), batch norm and `activation` after every layer but the last.
    Returns flat images [n, h*w*c], like the data samplers."""

    hidden: Sequence[int]
    image_shape: tuple[int, int, int]
    activation: str = "relu"
    negative_slope: float = 0.2
    output_activation: str = "tanh"
    num_classes: int = 0
    dtype: jnp.dtype = jnp.float32  # of the matmuls; batch norm's statistics stay float32
    convolutions: str = "windows"  # a key of CONVOLUTIONS

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = False) -> jax.Array:
        act = activation(self.activation, self.negative_slope)
        norm = lambda h: act(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h.astype(jnp.float32)))  # noqa: E731
        height, width, channels = self.image_shape
        scale = 2 ** len(self.hidden)
        h = nn.Dense(height // scale * width // scale * self.hidden[0], use_bias=False, dtype=self.dtype)(
            with_label(z, labels, self.num_classes))
        h = norm(h.reshape((z.shape[0], height // scale, width // scale, self.hidden[0])))
        conv = functools.partial(ConvTranspose2x, dtype=self.dtype, convolutions=self.convolutions)
        for features in self.hidden[1:]:
            h = norm(conv(features, use_bias=False)(h))
        h = conv(channels)(h).astype(jnp.float32)
        return activation(self.output_activation)(h).reshape(z.shape[0], -1)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator on flat images: stride-2 4x4 convs with `activation` (no batch norm, so D's
    output for one image does not depend on the rest of its batch), then a dense logit. The features are
    the flattened last conv map."""

    hidden: Sequence[int]
    image_shape: tuple[int, int, int]
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    dropout: float = 0.0
    num_classes: int = 0
    spectral_norm: bool = False
    dtype: jnp.dtype = jnp.float32  # of the matmuls
    convolutions: str = "windows"  # a key of CONVOLUTIONS

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None,
                 train: bool = False) -> tuple[jax.Array, jax.Array]:
        act = activation(self.activation, self.negative_slope)
        h = with_label(x.reshape((x.shape[0],) + tuple(self.image_shape)), labels, self.num_classes)
        for features in self.hidden:
            h = act(spectral(Conv2x(features, dtype=self.dtype, convolutions=self.convolutions), self.spectral_norm)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        features = h.reshape(x.shape[0], -1)
        logit = spectral(nn.Dense(1, name="logit", dtype=self.dtype), self.spectral_norm)(features)[..., 0]
        return logit.astype(jnp.float32), features.astype(jnp.float32)


def _mlp(cfg: Config, out_dim: int) -> tuple[nn.Module, nn.Module]:
    g, d, dtype = cfg.generator, cfg.discriminator, PRECISIONS[cfg.precision]
    return (Generator(g.hidden, out_dim, g.activation, g.negative_slope, g.output_activation, g.kernel_init,
                      cfg.num_classes, dtype),
            Discriminator(d.hidden, d.feature_dim, d.activation, d.negative_slope, d.dropout, d.kernel_init,
                          cfg.num_classes, d.spectral_norm, dtype))


def _dcgan(cfg: Config, out_dim: int) -> tuple[nn.Module, nn.Module]:
    g, d, dtype = cfg.generator, cfg.discriminator, PRECISIONS[cfg.precision]
    height, width, channels = cfg.image_shape
    return (ConvGenerator(g.hidden, cfg.image_shape, g.activation, g.negative_slope, g.output_activation,
                          cfg.num_classes, dtype, cfg.convolutions),
            ConvDiscriminator(d.hidden, (height, width, channels * cfg.pack), d.activation, d.negative_slope,
                              d.dropout, cfg.num_classes, d.spectral_norm, dtype, cfg.convolutions))


# name -> (cfg, data dimension) -> (generator, discriminator)
ARCHITECTURES: dict[str, Callable[[Config, int], tuple[nn.Module, nn.Module]]] = {"mlp": _mlp, "dcgan": _dcgan}


def make_models(cfg: Config, out_dim: int) -> tuple[nn.Module, nn.Module]:
    """The generator (whose output width is `out_dim`) and discriminator of `cfg.architecture`."""
    return ARCHITECTURES[cfg.architecture](cfg, out_dim)


MIN_MAP = 4  # G's first map is at least 4x4 (DCGAN's, Radford et al. 2016; MNIST's 28 halves twice, to 7x7)


def dcgan_widths(image_shape: Sequence[int], base: int = 32) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(generator.hidden, discriminator.hidden) of a DCGAN for images of `image_shape` (height, width, channels):
    k stride-2 layers, k the most halvings that keep height and width integers and their smaller one >= MIN_MAP
    (28 -> 7 with k = 2; 32 -> 4 with k = 3; 64 -> 4 with k = 4); channels `base` at the image end, doubling per
    layer towards the coarse end: G (base * 2^(k-1), ..., base), D the reverse. For 28x28 that is the shipped
    dcgan preset's G (64, 32) and D (32, 64)."""
    height, width = int(image_shape[0]), int(image_shape[1])
    k = 0
    while height % 2 ** (k + 1) == 0 and width % 2 ** (k + 1) == 0 and min(height, width) >> (k + 1) >= MIN_MAP:
        k += 1
    if k == 0:
        raise ConfigError(f"`image_shape`: a DCGAN halves height and width at least once, down to at least "
                          f"{MIN_MAP}x{MIN_MAP}; {height}x{width} cannot be (resize the images to even sizes of at "
                          f"least {2 * MIN_MAP}, or use the mlp architecture)")
    g_hidden = tuple(base * 2 ** i for i in reversed(range(k)))
    return g_hidden, g_hidden[::-1]
