"""The torch side of npcnn: torch twins of the networks and weight conversion.

    module = bridge.torch_model("lenet5")     # torch.nn.Module, same state_dict keys
    model = bridge.from_torch(module)         # npcnn.Model with those weights
    module2 = bridge.to_torch(model)
"""
from .convert import from_torch, to_torch
from .networks import named_layers, torch_activations, torch_model
from .parity import LayerParity, compare_activations

__all__ = ["torch_model", "from_torch", "to_torch", "torch_activations", "named_layers",
           "compare_activations", "LayerParity"]
