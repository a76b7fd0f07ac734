"""What every model kind shares.

The module stack loaded from a folder or the Hub, devices, backends, int8 and ONNX export, prompts, save and
push. ``SentenceTransformer`` adds the encode family to it; each new kind (pairs ->
scores, sparse vectors) adds only its inputs, its head and its public methods.
"""

from embedstack.base.devices import default_device
from embedstack.base.model import BaseModel

__all__ = ["BaseModel", "default_device"]
