"""A real Django REST Framework chat app to test against, and its runner.

The DfeHub service's throttle is DRF's (`AnonRateThrottle` and its
`Throttled` text), so tests and benchmarks check the client against a real
DRF app rather than our idea of one. `running_drf_service(rate)` starts it
under gunicorn on a free port of 127.0.0.1 and stops it at the end of the
`with` block; importing this package does not import Django.
"""

from ._runner import DrfService, DrfServiceError, ServerStats, running_drf_service

__all__ = ["DrfService", "DrfServiceError", "ServerStats", "running_drf_service"]
