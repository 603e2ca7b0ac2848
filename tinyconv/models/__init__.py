"""The pretrained networks, written as readable code with the weights file's layer names."""
from .facenet import facenet
from .mtcnn import mtcnn
from .vgg import vgg16, vgg19

__all__ = ["facenet", "mtcnn", "vgg16", "vgg19"]
