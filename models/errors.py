"""Domain errors of the model library; `app/` maps each `code` to an HTTP status in one place."""


class AeseekError(Exception):
    """Base class of every error aeseek raises on purpose; `code` names the kind for clients."""

    code = "aeseek_error"


class DatasetError(AeseekError):
    """A dataset is missing, corrupt or fails its checksum."""

    code = "dataset_unavailable"


class CheckpointError(AeseekError):
    """A checkpoint is missing, corrupt or of an unknown kind."""

    code = "checkpoint_error"


class ImageError(AeseekError):
    """An uploaded file cannot be used as a query; the message says why."""

    code = "invalid_image"


class EmptyUploadError(ImageError):
    """The upload has no bytes."""

    code = "empty_file"


class UnsupportedImageError(ImageError):
    """The upload is not an image in an accepted format."""

    code = "unsupported_image"


class CorruptImageError(ImageError):
    """The image header or data is truncated or corrupt."""

    code = "corrupt_image"


class ImageTooLargeError(ImageError):
    """The image declares more pixels, or the upload more bytes, than the limits allow."""

    code = "image_too_large"


class NoInkError(ImageError):
    """An image has no foreground strokes (blank or constant)."""

    code = "no_ink"
