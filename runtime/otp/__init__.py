"""One-time codes end to end (the Verify API): enrollments of a phone and challenges sent to
it, codes made with ``secrets``, kept as HMACs, expiring, single use, with an attempt limit.
docs/verify.md describes the API."""

from runtime.otp.codes import CodeHasher, new_code
from runtime.otp.locale import request_locale
from runtime.otp.service import Caller, Checked, Sent, VerifyService
from runtime.otp.store import Check, OtpStore

__all__ = [
    "Caller",
    "Check",
    "Checked",
    "CodeHasher",
    "OtpStore",
    "Sent",
    "VerifyService",
    "new_code",
    "request_locale",
]
