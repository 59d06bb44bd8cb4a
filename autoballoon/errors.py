"""The errors a user sees: each names the file, key or line, and what was expected."""


class SpecError(ValueError):
    """A scenario, guest or workload description that cannot be simulated."""
