"""Face verification and recognition with FaceNet, under the Coursera course's names.

    img_to_encoding(image_path, model)            one image -> (128,) unit encoding
    encode(model, images)                         many images -> (N, 128)
    verify(image_path, identity, database, model) -> (distance, door_open)
    who_is_it(image_path, database, model)        -> (min_dist, identity)
    identify(photo, database, model)              -> [Match(box, nearest, distance, known)], every face
    triplet_loss(y_true, (anchor, positive, negative), alpha=0.2)
    FaceDatabase(path)                            name -> encodings, in an HDF5 file
    detect_faces(image) -> [Face]; align(image, face); choose_face(faces, image_shape)   MTCNN (detect.py)
Faces are found by MTCNN first (preprocessing "mtcnn-flip", the default); preprocess="course" is the course's own.
Command line: python -m tinyconv.faces --help
"""
from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.detect import Face, align, choose_face, detect_faces
from tinyconv.faces.encoding import encode, img_to_encoding
from tinyconv.faces.recognition import identify, verify, who_is_it
from tinyconv.faces.triplet import triplet_loss

__all__ = ["img_to_encoding", "encode", "verify", "who_is_it", "identify", "triplet_loss", "FaceDatabase", "Face",
           "detect_faces", "align", "choose_face"]
