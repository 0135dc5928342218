"""Member names: how one is checked, and the key that names looking alike share.

Names are shown as typed (after NFKC), but compared by a key that look-alikes share:
the Unicode TR39 skeleton (disarm's ``skeleton_key``) of the case-folded name, so
"ALICE", full-width "ａｌｉｃｅ" and "аlice" with a Cyrillic "а" cannot join beside
"alice". Here at the bottom of the layers because a migration computes it too.

What the database stores is :func:`lookup_key`: the key under a cooperative secret
(HMAC), so a copy of the database cannot be searched with a dictionary of names; the
names themselves are sealed with each member's data key (``coop/members.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import disarm

from tunetrust.errors import InputError


def check_name(name: str) -> str:
    """A member name as shown: NFKC, trimmed; refuses empty, over-long or control characters."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        raise InputError("a member name cannot be empty")
    if len(name) > 200:
        raise InputError("a member name can be at most 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError("a member name cannot contain control characters")
    return name


def folded(name: str) -> str:
    """The name as compared before look-alikes are mapped: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def name_key(name: str) -> str:
    """What names that look alike share: a digest of the TR39 skeleton of the folded name.

    Case is folded first (as IDNA does for host names), then every confusable character
    is mapped to its prototype, digits included ("a1ice" is "alice"). The digest keeps
    the indexed column short: a skeleton can be several times longer than its name.
    """
    plain = folded(name)
    skeleton = disarm.skeleton_key(plain, digit_policy="tr39")
    # a name made only of characters the skeleton drops (private use) is compared as typed
    basis = skeleton or "\x00" + plain
    return hashlib.sha256(basis.encode()).hexdigest()


def rekey(secret: bytes, key: str) -> str:
    """A :func:`name_key` digest as stored: HMAC-SHA256 under the cooperative's secret."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def lookup_key(secret: bytes, name: str) -> str:
    """What ``members.name_key`` holds for ``name``: its look-alike key, keyed."""
    return rekey(secret, name_key(name))
