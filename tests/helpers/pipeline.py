"""The pure pipeline's steps in the worker's order, for tests that hold Models directly."""
import numpy as np

from ml.pipeline import Models, Result, forward, interpret
from ml.preprocess import to_input


def classify(images: list[np.ndarray], models: Models) -> list[Result]:
    """One forward pass for all the images, then faces and the answer per image."""
    outputs = forward(np.stack([to_input(img, models.backbone.input_size) for img in images]), models)
    return [interpret(models.faces.detect(img), out, models) for img, out in zip(images, outputs)]
