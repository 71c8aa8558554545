"""The torch side of npcnn: torch twins of the networks, weight files,
training, and the reference deconvnet.

    module = bridge.torch_model("lenet5")     # torch.nn.Module, same state_dict keys
    model = bridge.from_torch(module)         # npcnn.Model with those weights
    module2 = bridge.to_torch(model)
    model = bridge.load("lenet5.pt")          # checkpoint, plain state_dict or .npz
"""
from .checkpoint import load, load_module, load_pretrained, read_checkpoint, save_checkpoint
from .convert import from_torch, to_torch
from .deconv_reference import ReferenceDeconvnet, project_reference, with_relu_rule
from .networks import named_layers, torch_activations, torch_model
from .parity import LayerParity, compare_activations

__all__ = ["torch_model", "from_torch", "to_torch", "torch_activations", "named_layers",
           "load", "load_module", "load_pretrained", "read_checkpoint", "save_checkpoint",
           "project_reference", "ReferenceDeconvnet", "with_relu_rule", "compare_activations", "LayerParity"]
