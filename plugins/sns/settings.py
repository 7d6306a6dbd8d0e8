"""A tenant's Amazon SNS settings and credentials (static keys, or none for botocore's chain)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from runtime.provider_kit import BaseUrl, E164Number, ProviderCredentials, ProviderSettings

__all__ = ["SnsConfig", "SnsCredentials"]


class SnsConfig(ProviderSettings):
    """A tenant's public Amazon SNS settings."""

    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
        description="AWS region that sends the SMS and signs the request (`eu-west-1`).",
    )
    base_url: BaseUrl | None = Field(
        default=None,
        description=(
            "SNS endpoint; unset: `https://sns.{region}.amazonaws.com` "
            "(tests: a local stub or moto server)."
        ),
    )
    sms_type: Literal["Transactional", "Promotional"] = Field(
        default="Transactional",
        description=(
            "`AWS.SNS.SMS.SMSType`: `Transactional` (routed for reliability, as codes need) "
            "or `Promotional` (cheaper)."
        ),
    )
    sender_id: str | None = Field(
        default=None,
        max_length=11,
        pattern=r"^[0-9]*[A-Za-z][A-Za-z0-9]*$",
        description=(
            "`AWS.SNS.SMS.SenderID`: alphanumeric sender ID (1-11 letters or digits, at least "
            "one letter), where the destination country supports one."
        ),
    )
    origination_number: E164Number | None = Field(
        default=None,
        description=(
            "`AWS.SNS.SMS.OriginationNumber`: an E.164 number of the account to send from."
        ),
    )

    @property
    def endpoint(self) -> str:
        """``base_url``, or the region's public SNS endpoint."""
        return self.base_url or f"https://sns.{self.region}.amazonaws.com"


class SnsCredentials(ProviderCredentials):
    """A tenant's AWS credentials (write-only): static keys, or none for botocore's chain."""

    access_key_id: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        pattern=r"^\w+$",
        description=(
            "AWS access key ID (`AKIA…`, or `ASIA…` with a session token); with "
            "`secret_access_key`, or neither: botocore's default credential chain (aws extra)."
        ),
    )
    secret_access_key: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="AWS secret access key; set with `access_key_id`, or neither.",
    )
    session_token: SecretStr | None = Field(
        default=None,
        description="Session token of temporary credentials (STS), with the keys; else unset.",
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        return self
