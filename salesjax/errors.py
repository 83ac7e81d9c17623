"""The one exception type users see: its message is printed as a single line, never a traceback."""


class SalesjaxError(Exception):
    """A problem with the user's input or configuration, explained in one line."""
