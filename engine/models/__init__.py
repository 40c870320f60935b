"""Drift models: the periodic U-Net (trained), the Fourier neural operator (paper 001's FNO baseline) and the exact
Gaussian drift (``engine.interpolants.GaussianModel``)."""
from engine.models.fno import FNO, FNO_SIZES, build_fno
from engine.models.unet import UNET_SIZES, UNet, build_unet

__all__ = ["FNO", "FNO_SIZES", "UNET_SIZES", "UNet", "build_fno", "build_unet"]
