"""The one error type a bad format, spec or string raises."""


class FormatError(ValueError):
    """A format, format string or MAC spec that the contract does not define.

    The message is one line: the bad part, then the accepted forms.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
