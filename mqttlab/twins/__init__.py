"""Device twins: an AWS IoT Device Shadow compatible service, its client, a reactive device and an editor."""

from ._client import TwinError, Twins, diff_states
from ._device import ShadowDevice
from ._document import ShadowError, apply_update, compute_delta, full_document, parse_update

__all__ = ["ShadowDevice", "ShadowError", "TwinError", "Twins", "apply_update", "compute_delta", "diff_states",
           "full_document", "parse_update"]
