"""Named configurations a script can load by name: the reference tutorials (R1-R4), DCGAN and conditional
GANs, and the documented recipes that meet a target. Each is a static `Config`, traced `HParams` and
its run's default length.

    preset = presets.get("r2")
    gan = tasks.mnist.make_gan(preset.config, images)
    members = members.grid(range(8), preset.hparams)
"""
from __future__ import annotations

import dataclasses

from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config, DiscriminatorConfig, GeneratorConfig, HParams
from gan_jax.engine.schedule import Schedule
from gan_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: Config
    hparams: HParams
    steps: int  # the default run length
    snapshot_every: int  # the default interval of evaluations and snapshots
    task: str  # "toy" or "mnist": the task module that loads its data, evaluates it and draws its figures
    schedule: Schedule = Schedule()  # traced values changed during the run (e.g. a late learning-rate decay)


R1 = Config()  # the config defaults are R1: widths 16/16, D's 2-unit feature layer, RMSProp 1e-3, batch 256
R1_FULL_STEPS = 100_001  # the tutorial's iterations

_MLP128x3 = dict(generator=GeneratorConfig(hidden=(128, 128, 128), activation="relu"),
                 discriminator=DiscriminatorConfig(hidden=(128, 128, 128), feature_dim=None, activation="relu"))
_R2 = Config(data="mnist", image_shape=(28, 28, 1), latent_dim=100, noise="uniform",
             generator=GeneratorConfig(hidden=(128, 128), output_activation="tanh"),
             discriminator=DiscriminatorConfig(hidden=(128, 128), feature_dim=None),
             loss="non_saturating", optimizer="adam", batch_size=100, share_batch=False, log_every=50)
_DCGAN = Config(data="mnist", architecture="dcgan", image_shape=(28, 28, 1), latent_dim=100, noise="normal",
                generator=GeneratorConfig(hidden=(64, 32), activation="relu", output_activation="tanh"),
                discriminator=DiscriminatorConfig(hidden=(32, 64), feature_dim=None),
                loss="non_saturating", optimizer="adam", batch_size=64, share_batch=False, log_every=50)
_ADAM = default_hparams("adam", 1e-3)
_RING8 = R1.replace(data="ring8", gradient_penalty="r1", optimizer="adam", log_every=100, **_MLP128x3)
_DCGAN_HP = default_hparams("adam", 2e-4, beta1=0.5)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("r1", "R1, the TF1 toy GAN on the quadratic curve (16/16 MLPs, 2-D feature layer, RMSProp 1e-3, "
                 "batch 256; data standardized)", R1, default_hparams("rmsprop", 1e-3), 10_000, 1_000, "toy"),
    Preset("ring8", "ring8's recipe that covers all 8 modes: 128x3 relu MLPs, Adam 1e-4 (0.5, 0.9), R1 penalty "
                    "0.1, G average 0.999", _RING8,
           default_hparams("adam", 1e-4, beta1=0.5, beta2=0.9, gp_weight=0.1, ema_decay=0.999), 40_000, 5_000, "toy"),
    # What PBT found (experiments.tune, 8 members x 10,000 steps; docs/sweeps_and_search.md): its best member
    # kept the values it was drawn with, a discriminator 3.5x slower than G and a penalty of 8.8
    Preset("ring8_pbt", "ring8's model with PBT's best member: Adam lr_g 2.6e-4, lr_d 7.4e-5 (0.5, 0.9), R1 "
                        "penalty 8.8, G average 0.999", _RING8,
           default_hparams("adam", 2.588e-4, beta1=0.5, beta2=0.9, gp_weight=8.84, ema_decay=0.999).replace(
               lr_d=7.362e-5), 10_000, 1_000, "toy"),
    # PBT on the PacGAN ring itself (16 members x 20,000 steps, ranked by high quality): its best member's
    # lineage, as a schedule: a strong R1 penalty while the modes form, weak once they have; a slower D late
    Preset("pacgan_ring_pbt", "PacGAN's ring with the schedule of PBT's best lineage there: Adam lr_g 1.65e-4, lr_d "
                              "1.9e-4 (0.5, 0.9), R1 penalty 18, x0.12 from step 7,500; from 15,000 lr_d x0.25, lr_g "
                              "x0.8; G average 0.999", _RING8.replace(data="pacgan_ring"),
           default_hparams("adam", 1.65e-4, beta1=0.5, beta2=0.9, gp_weight=18.0, ema_decay=0.999).replace(
               lr_d=1.9e-4), 20_000, 2_500, "toy",
           Schedule.parse(["7500:gp_weight*0.12", "15000:lr_d*0.25,lr_g*0.8"])),
    # The values PBT's best grid25 member trained with longest (steps 6,000 to 18,000 of 20,000): G 17x faster
    Preset("grid25_pbt", "grid25 with PBT's best member's longest-held values: latent 16, Adam lr_g 1.26e-3, lr_d "
                         "7.4e-5 (0.5, 0.9), R1 penalty 5.9, G average 0.999", _RING8.replace(data="grid25", latent_dim=16),
           default_hparams("adam", 1.26e-3, beta1=0.5, beta2=0.9, gp_weight=5.9, ema_decay=0.999).replace(
               lr_d=7.4e-5), 20_000, 5_000, "toy"),
    # PBT on the PacGAN grid itself (16 members x 25,000 steps from grid25_pbt with D's rate 2e-4 and batch
    # 512, ranked by high quality): its best member's lineage, as a schedule
    Preset("pacgan_grid_pbt", "PacGAN's grid with the schedule of PBT's best lineage there: grid25_pbt's model, batch "
                              "512, Adam lr_g 1.26e-3, lr_d 2e-4 (0.5, 0.9), R1 penalty 5.9; from 15,000 lr_g x0.8, "
                              "lr_d x0.76, penalty x1.25; G average 0.999",
           _RING8.replace(data="pacgan_grid", latent_dim=16, batch_size=512),
           default_hparams("adam", 1.26e-3, beta1=0.5, beta2=0.9, gp_weight=5.9, ema_decay=0.999).replace(
               lr_d=2e-4), 25_000, 2_500, "toy", Schedule.parse(["15000:lr_g*0.8,lr_d*0.76,gp_weight*1.25"])),
    Preset("r2", "R2, the TF1 MNIST MLP GAN (G 100-128-128-784 tanh, D 784-128-128-1, leaky_relu 0.2, Adam 1e-3, "
                 "batch 100)", _R2, _ADAM, 5_000, 500, "mnist"),
    # PBT's best member on r2's model (16 members x 10,000 steps, ranked by classifier score): G's learning
    # rate 3.9x D's and a small beta1
    Preset("r2_pbt", "r2's model with PBT's best member: Adam lr_g 9.2e-4, lr_d 2.4e-4, beta1 0.14; G average 0.999",
           _R2.replace(log_every=100), default_hparams("adam", 9.17e-4, beta1=0.138, ema_decay=0.999).replace(
               lr_d=2.373e-4), 10_000, 2_500, "mnist"),
    # r2_pbt's learning rates on wider nets with an R1 penalty: the penalty ended the collapses (8 seeds x 10,000
    # steps of r2_pbt's nets: 0 of 8 collapsed at penalty 10, 5 of 8 at 0) and the width raised the plateau
    Preset("r2_wide_r1", "unconditional MLP, wider: G 100-256-512-784 tanh, D 784-512-256-1, R1 penalty 10, Adam "
                         "lr_g 9.2e-4, lr_d 2.4e-4, beta1 0.14; G average 0.999",
           _R2.replace(log_every=100, gradient_penalty="r1",
                       generator=GeneratorConfig(hidden=(256, 512), output_activation="tanh"),
                       discriminator=DiscriminatorConfig(hidden=(512, 256), feature_dim=None)),
           default_hparams("adam", 9.17e-4, beta1=0.138, ema_decay=0.999, gp_weight=10.0).replace(lr_d=2.373e-4),
           25_000, 2_500, "mnist"),
    Preset("r3", "R3, r2 with one-sided label smoothing (real label 0.9) and dropout 0.3 in D",
           _R2.replace(discriminator=DiscriminatorConfig(hidden=(128, 128), feature_dim=None, dropout=0.3)),
           _ADAM.replace(real_label=0.9), 5_000, 500, "mnist"),
    Preset("r4", "R4, the notebook's GAN (G 100-128-784 relu/sigmoid, D 784-128-1 relu, N(0, 2/fan_in) init, "
                 "Adam 1e-3, batch 128)",
           _R2.replace(generator=GeneratorConfig(hidden=(128,), activation="relu", output_activation="sigmoid",
                                                 kernel_init="r4_xavier"),
                       discriminator=DiscriminatorConfig(hidden=(128,), feature_dim=None, activation="relu",
                                                         kernel_init="r4_xavier"),
                       batch_size=128), _ADAM, 5_000, 500, "mnist"),
    Preset("dcgan", "half-width DCGAN (G dense 7x7x64, transposed convs 32, 1, batch norm; D convs 32, 64), "
                    "Adam 2e-4 (0.5, 0.999), batch 64", _DCGAN, _DCGAN_HP, 3_000, 500, "mnist"),
    # r2's model; Adam b1 0.5, because with r2's b1 0.9 every seed collapsed to one class (docs/results.md)
    Preset("cgan", "conditional r2: the digit's one-hot code concatenated to G's noise and D's input; Adam b1 0.5",
           _R2.replace(num_classes=10), _ADAM.replace(beta1=0.5), 5_000, 500, "mnist"),
    Preset("cdcgan", "conditional dcgan: the code concatenated to z, and to D's input as 10 constant channels",
           _DCGAN.replace(num_classes=10), _DCGAN_HP, 3_000, 500, "mnist"),
    Preset("stacked_dcgan", "dcgan's networks for Stacked MNIST's 28x28x3 images (three digits as channels)",
           _DCGAN.replace(data="stacked_mnist", image_shape=(28, 28, 3)), _DCGAN_HP, 5_000, 1_000, "stacked_mnist"),
    # Mimicry's SNGAN settings (Lee & Town 2020, after Miyato et al. 2018) on dcgan's networks
    Preset("sngan", "SNGAN: dcgan's networks with spectral norm in every D layer, hinge loss, Adam 2e-4 (0.0, 0.9), "
                    "5 D updates per G update", _DCGAN.replace(
                        loss="hinge", n_disc=5, discriminator=dataclasses.replace(_DCGAN.discriminator, spectral_norm=True)),
           default_hparams("adam", 2e-4, beta1=0.0, beta2=0.9), 3_000, 500, "mnist"),
    # Gulrajani et al. 2017, Algorithm 1's defaults: lambda 10, n_critic 5, Adam 1e-4 (0.0, 0.9)
    Preset("wgan_gp", "WGAN-GP: dcgan's networks, Wasserstein critic loss, gradient penalty 10 on interpolates, "
                      "Adam 1e-4 (0.0, 0.9), 5 critic updates per G update",
           _DCGAN.replace(loss="wasserstein", gradient_penalty="wgan_gp", n_disc=5),
           default_hparams("adam", 1e-4, beta1=0.0, beta2=0.9, gp_weight=10.0), 3_000, 500, "mnist"),
)}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"`preset`: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
