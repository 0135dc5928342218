"""The WebAuthn ceremonies (through the ``webauthn`` library): options out, responses checked.

Passkeys are discoverable credentials, so signing in asks for no name: the browser offers
the member's passkeys for this site, and the credential id it returns finds the member.
The challenge is kept in the server-side session between the two halves of a ceremony,
and used once.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tunetrust.errors import InputError

RP_NAME = "TuneTrust cooperative"
_FAILURES = (
    InvalidRegistrationResponse,
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    ValueError,
    KeyError,
    TypeError,
)


@dataclass(frozen=True)
class Party:
    """The relying party: the site's origin and the id passkeys are bound to (its host)."""

    origin: str

    @property
    def rp_id(self) -> str:
        """The host of the origin (``localhost``, ``coop.example.org``)."""
        return urlsplit(self.origin).hostname or "localhost"


@dataclass(frozen=True)
class NewPasskey:
    """A verified registration: what the database keeps."""

    credential_id: str
    public_key: bytes
    sign_count: int


def registration(
    party: Party, user_name: str, exclude: list[str] | None = None
) -> tuple[dict[str, Any], str]:
    """Options for ``navigator.credentials.create`` and the challenge to keep (base64url)."""
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_registration_options(
        rp_id=party.rp_id,
        rp_name=RP_NAME,
        user_name=user_name,
        user_id=secrets.token_bytes(16),  # a random handle: never the member's id or name
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(c)) for c in exclude or []
        ],
    )
    data: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return data, bytes_to_base64url(challenge)


def verify_registration(party: Party, credential: dict[str, Any], challenge: str) -> NewPasskey:
    """Check a browser's registration response against the kept challenge."""
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(challenge),
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
        )
    except _FAILURES as e:
        raise InputError(f"the passkey could not be registered: {_reason(e)}") from None
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
    )


def authentication(party: Party) -> tuple[dict[str, Any], str]:
    """Options for ``navigator.credentials.get`` (any of this site's passkeys) and the challenge."""
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_authentication_options(
        rp_id=party.rp_id,
        challenge=challenge,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    data: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return data, bytes_to_base64url(challenge)


def credential_id(credential: dict[str, Any]) -> str:
    """The credential id a sign-in response names (to find the member's passkey)."""
    raw = credential.get("rawId") or credential.get("id")
    if not isinstance(raw, str) or not 0 < len(raw) <= 1400:
        raise InputError("the sign-in response names no passkey")
    return raw


def verify_authentication(
    party: Party,
    credential: dict[str, Any],
    challenge: str,
    public_key: bytes,
    sign_count: int,
) -> int:
    """Check a sign-in response with the stored public key; returns the new counter."""
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(challenge),
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
        )
    except _FAILURES as e:
        raise InputError(f"the passkey did not sign in: {_reason(e)}") from None
    return int(verified.new_sign_count)


def _reason(error: Exception) -> str:
    """The library's reason, without anything the browser sent (it is the attacker's text)."""
    text = str(error).split(":")[0].strip().rstrip(".")
    return text[:120] if text else type(error).__name__


__all__ = [
    "NewPasskey",
    "Party",
    "authentication",
    "credential_id",
    "registration",
    "verify_authentication",
    "verify_registration",
]
