"""The one error of the spec layer."""


class ConfigError(ValueError):
    """Bad parameters: the message names the field, the value, and what is allowed."""
