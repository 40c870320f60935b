"""Datasets: generators (Gaussian random fields, …) and xarray/netCDF I/O."""
