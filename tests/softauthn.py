"""A software WebAuthn authenticator for tests and benchmarks: no browser, no hardware.

``SoftAuthenticator`` plays both the browser and a platform authenticator. It takes the
options JSON a server made (``webauthn.options_to_json(generate_*_options(...))`` parsed back
into a dict) and returns the ``PublicKeyCredential`` JSON a browser would POST, with every
binary field base64url without padding. Keys are EC P-256 and signatures ES256 (COSE -7);
attestation is ``none``. Credentials live in memory: id -> private key, user handle, counter.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.encode_cbor import encode_cbor

ES256 = -7  # COSE algorithm identifier: ECDSA over P-256 with SHA-256
AAGUID = bytes(16)  # all zeros: the usual AAGUID with attestation "none"

# authenticatorData flags (WebAuthn Level 3, section 6.1)
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_AT = 0x40  # attested credential data included


class AuthenticatorError(Exception):
    """What a browser would reject the ceremony with (NotAllowedError, InvalidStateError...)."""


@dataclass
class Credential:
    """One credential the authenticator holds."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def public_key_cose(self) -> bytes:
        """The public key as a CBOR-encoded COSE_Key (EC2, P-256, ES256)."""
        numbers = self.private_key.public_key().public_numbers()
        return encode_cbor(
            {
                1: 2,  # kty: EC2
                3: ES256,  # alg
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    @property
    def public_key_spki(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo, as ``response.getPublicKey()`` gives."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class SoftAuthenticator:
    """A platform authenticator plus the browser glue around it, all in software.

    ``origin`` is the page origin the browser reports in clientDataJSON; ``rp_id`` is the
    relying party id the authenticator accepts (a server's options naming another one are
    refused, as a browser would). ``user_verified`` sets the UV flag on every ceremony.
    """

    def __init__(
        self,
        origin: str = "https://localhost",
        rp_id: str = "localhost",
        *,
        user_verified: bool = True,
    ) -> None:
        """Start with no credentials."""
        self.origin = origin
        self.rp_id = rp_id
        self.user_verified = user_verified
        self.credentials: dict[bytes, Credential] = {}

    # --- helpers ---------------------------------------------------------------------

    def _check_rp_id(self, rp_id: str | None) -> str:
        """The rp id of a ceremony: the options' one, which must be ours, or ours by default."""
        rp_id = rp_id or self.rp_id
        if rp_id != self.rp_id:
            raise AuthenticatorError(f"rp id {rp_id!r} is not {self.rp_id!r} (SecurityError)")
        return rp_id

    def _client_data(self, kind: str, challenge: str) -> bytes:
        """clientDataJSON as a browser serialises it: type, challenge, origin, crossOrigin."""
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def _flags(self) -> int:
        """UP always; UV when the authenticator claims the user was verified."""
        return FLAG_UP | (FLAG_UV if self.user_verified else 0)

    # --- ceremonies ------------------------------------------------------------------

    def register(self, options: dict[str, Any]) -> dict[str, Any]:
        """Answer ``navigator.credentials.create({publicKey: options})``.

        ``options`` is the registration options JSON (a dict) from
        ``webauthn.options_to_json(generate_registration_options(...))``. Makes a new P-256
        credential and returns the RegistrationResponseJSON a browser would POST, with
        attestation ``none``. Raises ``AuthenticatorError`` where a browser would refuse:
        another rp id, no ES256 among pubKeyCredParams, or a credential of ours excluded.
        """
        rp_id = self._check_rp_id(options.get("rp", {}).get("id"))
        algs = [p.get("alg") for p in options.get("pubKeyCredParams", [])]
        if algs and ES256 not in algs:
            raise AuthenticatorError(f"no supported algorithm in {algs} (NotSupportedError)")
        for excluded in options.get("excludeCredentials", []):
            if base64url_to_bytes(excluded["id"]) in self.credentials:
                raise AuthenticatorError("credential already registered (InvalidStateError)")

        cred = Credential(
            credential_id=secrets.token_bytes(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=base64url_to_bytes(options["user"]["id"]),
        )
        self.credentials[cred.credential_id] = cred

        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags() | FLAG_AT])
            + struct.pack(">I", cred.sign_count)
            + AAGUID
            + struct.pack(">H", len(cred.credential_id))
            + cred.credential_id
            + cred.public_key_cose
        )
        attestation_object = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        cred_id = bytes_to_base64url(cred.credential_id)
        return {
            "id": cred_id,
            "rawId": cred_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "attestationObject": bytes_to_base64url(attestation_object),
                "authenticatorData": bytes_to_base64url(auth_data),
                "transports": ["internal"],
                "publicKeyAlgorithm": ES256,
                "publicKey": bytes_to_base64url(cred.public_key_spki),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def sign_in(self, options: dict[str, Any]) -> dict[str, Any]:
        """Answer ``navigator.credentials.get({publicKey: options})``.

        ``options`` is the authentication options JSON (a dict) from
        ``generate_authentication_options``. Uses the first credential of ours listed in
        ``allowCredentials``, or, when that list is empty (a discoverable-credential sign-in),
        the most recently registered one for the rp id. Increments its counter, signs
        ``authenticatorData || SHA-256(clientDataJSON)`` with ES256 and returns the
        AuthenticationResponseJSON a browser would POST. Raises ``AuthenticatorError`` where a
        browser would give NotAllowedError: no usable credential.
        """
        rp_id = self._check_rp_id(options.get("rpId"))
        allowed = [base64url_to_bytes(c["id"]) for c in options.get("allowCredentials", [])]
        if allowed:
            usable = [self.credentials[i] for i in allowed if i in self.credentials]
        else:
            usable = [c for c in reversed(self.credentials.values()) if c.rp_id == rp_id]
        usable = [c for c in usable if c.rp_id == rp_id]
        if not usable:
            raise AuthenticatorError("no credential for this request (NotAllowedError)")
        cred = usable[0]

        cred.sign_count += 1
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", cred.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = cred.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        cred_id = bytes_to_base64url(cred.credential_id)
        return {
            "id": cred_id,
            "rawId": cred_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": bytes_to_base64url(cred.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
