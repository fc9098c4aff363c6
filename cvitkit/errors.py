"""Exception types. Every message names what was wrong, where, and how to fix it."""


class CvitkitError(Exception):
    """Base class of every error the kit raises on purpose."""


class ConfigError(CvitkitError, ValueError):
    """A configuration file or value is invalid (unknown key, wrong type, unknown name)."""


class ModelPathError(CvitkitError, FileNotFoundError):
    """A model folder is missing or does not hold a loadable model."""


class DataError(CvitkitError, ValueError):
    """A data file or record is malformed, incomplete or inconsistent."""
