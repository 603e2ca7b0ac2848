"""The two pretrained networks, written as readable code with the weights file's layer names."""
from .facenet import facenet
from .vgg import vgg16, vgg19

__all__ = ["facenet", "vgg16", "vgg19"]
