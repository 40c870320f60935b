"""Drift models: the periodic U-Net (trained) and the exact Gaussian drift (``engine.interpolants.GaussianModel``)."""
from engine.models.unet import UNET_SIZES, UNet, build_unet

__all__ = ["UNET_SIZES", "UNet", "build_unet"]
