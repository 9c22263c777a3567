"""Catalog data: model configurations and hardware profiles, each with its source."""

from simkit.catalog.hardware import HardwareProfile, hardware_names, load_hardware
from simkit.catalog.models import ModelConfig, load_model, model_names

__all__ = ["HardwareProfile", "ModelConfig", "hardware_names", "load_hardware", "load_model",
           "model_names"]
