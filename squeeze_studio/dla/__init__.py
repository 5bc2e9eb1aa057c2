"""Connectors from the MLLM's layer stack to the diffusion transformer's context: last_layer, lap, dla."""
from .connector import CONNECTOR_MODES, LayerConnector
from .lap import LayerwiseAttentionPooling

__all__ = ["CONNECTOR_MODES", "LayerConnector", "LayerwiseAttentionPooling"]
