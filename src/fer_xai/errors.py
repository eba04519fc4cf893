"""The base of fer-xai's domain errors: library code raises them, ``fer_xai.cli`` turns them into
one-line command errors in one place."""


class FerXaiError(Exception):
    """A problem with the user's input or files that the message explains; no traceback needed."""
