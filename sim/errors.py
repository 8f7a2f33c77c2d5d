"""The one error type a bad format, spec or string raises."""


class FormatError(ValueError):
    """A format, format string or MAC spec that the contract does not define.

    The message is one line: the bad part, then the accepted forms.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def json_object(text: str, what: str) -> dict:
    """The JSON object a spec's ``to_json()`` wrote, or one-line ``FormatError`` naming ``what``."""
    import json

    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(f"bad {what} JSON: {e.msg} at line {e.lineno}; accepted the output of to_json()") from None
    if not isinstance(d, dict):
        raise FormatError(f"bad {what} JSON: not an object; accepted the output of to_json()")
    return d
