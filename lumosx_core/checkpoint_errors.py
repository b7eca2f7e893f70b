"""The errors of every checkpoint reader (``convert``, ``torch_zip``, ``dcp_unpickle``)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says why and what to do."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for objects that could run code, or that would change
    objects of the running process: refused unread."""
