"""The software authenticator round-trips against the real server-side ``webauthn`` library."""

from __future__ import annotations

import json
from typing import Any

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .softauthn import AuthenticatorError, SoftAuthenticator

ORIGIN = "https://localhost"
RP_ID = "localhost"


def _registration_options(**kwargs: Any) -> tuple[dict[str, Any], bytes]:
    """Registration options as the JSON dict a browser receives, and their challenge."""
    opts = generate_registration_options(
        rp_id=RP_ID,
        rp_name="TuneTrust",
        user_name="alice",
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        **kwargs,
    )
    return json.loads(options_to_json(opts)), opts.challenge


def _authentication_options(
    credential_ids: list[bytes] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Authentication options as the JSON dict a browser receives, and their challenge."""
    opts = generate_authentication_options(
        rp_id=RP_ID,
        allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in credential_ids or []],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return json.loads(options_to_json(opts)), opts.challenge


def _register(auth: SoftAuthenticator) -> tuple[dict[str, Any], Any]:
    """Register one credential and verify it as the server would; returns both halves."""
    options, challenge = _registration_options()
    credential = auth.register(options)
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )
    return credential, verified


def _verify_assertion(
    assertion: dict[str, Any], challenge: bytes, verified_reg: Any, count: int = 0
) -> Any:
    """Verify an assertion against a registered credential, as the server would."""
    return verify_authentication_response(
        credential=assertion,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=verified_reg.credential_public_key,
        credential_current_sign_count=count,
        require_user_verification=True,
    )


def test_registration_verifies_and_is_shaped_like_a_browser() -> None:
    """A registration passes verify_registration_response and has the browser JSON shape."""
    auth = SoftAuthenticator()
    credential, verified = _register(auth)

    assert credential["type"] == "public-key"
    assert credential["id"] == credential["rawId"]
    assert credential["authenticatorAttachment"] == "platform"
    assert credential["clientExtensionResults"] == {}
    assert credential["response"]["transports"] == ["internal"]
    for value in (credential["id"], *credential["response"].values()):
        if isinstance(value, str):
            assert "=" not in value and "+" not in value and "/" not in value  # base64url
    assert verified.credential_id == base64url_to_bytes(credential["id"])
    assert verified.fmt == "none"
    assert verified.sign_count == 0
    assert verified.user_verified
    stored = auth.credentials[verified.credential_id]
    assert stored.user_handle and stored.sign_count == 0


def test_sign_in_verifies_and_counter_increments() -> None:
    """Two sign-ins pass verify_authentication_response, with counters 1 then 2."""
    auth = SoftAuthenticator()
    _, reg = _register(auth)

    count = 0
    for expected in (1, 2):
        options, challenge = _authentication_options([reg.credential_id])
        assertion = auth.sign_in(options)
        verified = _verify_assertion(assertion, challenge, reg, count)
        assert verified.new_sign_count == expected
        assert verified.credential_id == reg.credential_id
        assert verified.user_verified
        count = verified.new_sign_count
    assert auth.credentials[reg.credential_id].sign_count == 2


def test_discoverable_sign_in_returns_the_user_handle() -> None:
    """With no allowCredentials the newest credential answers, with its user handle."""
    auth = SoftAuthenticator()
    options, challenge = _registration_options()
    user_id = options["user"]["id"]
    reg = verify_registration_response(
        credential=auth.register(options),
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
    )
    options, challenge = _authentication_options()
    assertion = auth.sign_in(options)
    assert assertion["response"]["userHandle"] == user_id
    assert _verify_assertion(assertion, challenge, reg).new_sign_count == 1


def test_tampered_signature_is_rejected() -> None:
    """Flipping one bit of the signature makes the library refuse the assertion."""
    auth = SoftAuthenticator()
    _, reg = _register(auth)
    options, challenge = _authentication_options([reg.credential_id])
    assertion = auth.sign_in(options)
    signature = bytearray(base64url_to_bytes(assertion["response"]["signature"]))
    signature[-1] ^= 0x01
    assertion["response"]["signature"] = bytes_to_base64url(bytes(signature))
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        _verify_assertion(assertion, challenge, reg)


def test_tampered_authenticator_data_is_rejected() -> None:
    """Raising the counter in authenticatorData after signing breaks the signature."""
    auth = SoftAuthenticator()
    _, reg = _register(auth)
    options, challenge = _authentication_options([reg.credential_id])
    assertion = auth.sign_in(options)
    data = bytearray(base64url_to_bytes(assertion["response"]["authenticatorData"]))
    data[-1] ^= 0x80
    assertion["response"]["authenticatorData"] = bytes_to_base64url(bytes(data))
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        _verify_assertion(assertion, challenge, reg)


def test_wrong_origin_is_rejected() -> None:
    """A ceremony run on another origin fails both registration and sign-in checks."""
    evil = SoftAuthenticator(origin="https://evil.example")
    options, challenge = _registration_options()
    with pytest.raises(InvalidRegistrationResponse, match="origin"):
        verify_registration_response(
            credential=evil.register(options),
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )

    auth = SoftAuthenticator()
    _, reg = _register(auth)
    auth.origin = "https://evil.example"
    options, challenge = _authentication_options([reg.credential_id])
    with pytest.raises(InvalidAuthenticationResponse, match="origin"):
        _verify_assertion(auth.sign_in(options), challenge, reg)


def test_wrong_challenge_is_rejected() -> None:
    """A response to one challenge does not verify against another."""
    auth = SoftAuthenticator()
    options, _ = _registration_options()
    _, other = _registration_options()
    with pytest.raises(InvalidRegistrationResponse, match="challenge"):
        verify_registration_response(
            credential=auth.register(options),
            expected_challenge=other,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )

    _, reg = _register(auth)
    options, _ = _authentication_options([reg.credential_id])
    _, other = _authentication_options([reg.credential_id])
    with pytest.raises(InvalidAuthenticationResponse, match="challenge"):
        _verify_assertion(auth.sign_in(options), other, reg)


def test_replayed_counter_is_rejected() -> None:
    """An assertion whose counter is not above the stored one is refused (cloned key)."""
    auth = SoftAuthenticator()
    _, reg = _register(auth)
    options, challenge = _authentication_options([reg.credential_id])
    assertion = auth.sign_in(options)  # counter 1
    with pytest.raises(InvalidAuthenticationResponse, match="count"):
        _verify_assertion(assertion, challenge, reg, count=5)


def test_authenticator_refuses_like_a_browser() -> None:
    """Another rp id, an excluded credential or an unknown credential raise AuthenticatorError."""
    auth = SoftAuthenticator()
    _, reg = _register(auth)

    options, _ = _registration_options()
    options["rp"]["id"] = "example.com"
    with pytest.raises(AuthenticatorError, match="rp id"):
        auth.register(options)

    options, _ = _registration_options(
        exclude_credentials=[PublicKeyCredentialDescriptor(id=reg.credential_id)]
    )
    with pytest.raises(AuthenticatorError, match="InvalidStateError"):
        auth.register(options)

    options, _ = _authentication_options([b"not-one-of-ours"])
    with pytest.raises(AuthenticatorError, match="NotAllowedError"):
        auth.sign_in(options)
