"""Pretrained weights in tinyconv's own HDF5 format: load/save, converters, and the pinned downloads.

    load(path, model)          check a weights file against a model, then copy it in
    save(path, model, attrs)   write a model's weights (atomically)
    read_attrs(path)           the file's root attributes (architecture, input_size, preprocessing, source, ...)
    ensure(name)               path of the converted 'facenet' / 'vgg16' file, downloading it once if needed
    path_if_present(name)      that path if it is already here, else None
Command line: python -m tinyconv.weights --help
"""
from tinyconv.weights.convert import convert_file
from tinyconv.weights.fetch import ensure, home, path_if_present, verify, weights_path
from tinyconv.weights.format import load, read_attrs, read_shapes, read_state, save

__all__ = ["load", "save", "read_attrs", "read_state", "read_shapes", "ensure", "path_if_present", "weights_path",
           "home", "verify", "convert_file"]
