"""Pools of fake but well-formed PII for the demo's free-text fields.

Every value is valid for the check a redactor applies: card numbers pass Luhn, IBANs pass
mod-97, SSNs avoid the never-issued areas (000, 666, 9xx). Values come in several real-world
spellings (spaces, dashes, international phone formats, IPv6). All pools are small and built
once per run from a seeded generator; rows pick from them by index.
"""

from __future__ import annotations

import numpy as np

PII_KINDS = ("email", "phone", "card", "iban", "ssn", "ip", "secret")

_LETTERS = np.array(list("abcdefghjkmnpqrstuvwxyz"))
_UPPER = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
_DIGITS = np.array(list("23456789"))
_FIRST = ["maria", "john", "li", "amara", "lukas", "sofia", "kenji", "fatima", "noah", "elena"]
_LAST = ["gonzalez", "smith", "wang", "okafor", "schmidt", "rossi", "tanaka", "haddad", "brown"]
_DOMAINS = ["gmail.com", "outlook.com", "northwind-traders.com", "contoso.io", "fabrikam.co.uk"]


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _alnum(rng: np.random.Generator, n: int, upper: bool = False) -> str:
    """Letters with isolated digits: never a run of digits a phone or card pattern could take."""
    letters = _UPPER if upper else _LETTERS
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append(str(rng.choice(_DIGITS)))
        else:
            out.append(str(rng.choice(letters)))
    return "".join(out)


def build_pools(rng: np.random.Generator, size: int = 24) -> dict[str, list[str]]:
    """kind -> list of values (several spellings per kind)."""
    pools: dict[str, list[str]] = {k: [] for k in PII_KINDS}
    for i in range(size):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 7) % len(_LAST)]
        sep = "." if i % 2 == 0 else "_"
        pools["email"].append(f"{first}{sep}{last}@{_DOMAINS[i % len(_DOMAINS)]}")

        n3 = lambda: int(rng.integers(200, 999))  # noqa: E731
        phone_styles = [
            f"+1 ({n3()}) 555-{int(rng.integers(100, 9999)):04d}",
            f"{n3()}-555-{int(rng.integers(100, 9999)):04d}",
            f"+44 20 7946 {int(rng.integers(0, 9999)):04d}",
            f"+49 30 {int(rng.integers(1000000, 9999999))}",
            f"+33 1 42 68 {int(rng.integers(10, 99))} {int(rng.integers(10, 99))}",
            f"+91 98{int(rng.integers(100, 999))} {int(rng.integers(10000, 99999))}",
        ]
        pools["phone"].append(phone_styles[i % len(phone_styles)])

        prefixes = ["4", "51", "52", "37", "6011"]
        prefix = prefixes[i % len(prefixes)]
        length = 15 if prefix == "37" else 16
        body = prefix + "".join(str(int(d)) for d in rng.integers(0, 10, length - len(prefix) - 1))
        card = body + luhn_check_digit(body)
        if length == 16 and i % 3 == 0:
            card = " ".join(card[j : j + 4] for j in range(0, 16, 4))
        elif length == 16 and i % 3 == 1:
            card = "-".join(card[j : j + 4] for j in range(0, 16, 4))
        pools["card"].append(card)

        ibans = [
            ("DE", "".join(str(int(d)) for d in rng.integers(0, 10, 18))),
            ("GB", "NWBK" + "".join(str(int(d)) for d in rng.integers(0, 10, 14))),
            ("FR", "".join(str(int(d)) for d in rng.integers(0, 10, 23))),
            ("NL", "ABNA" + "".join(str(int(d)) for d in rng.integers(0, 10, 10))),
        ]
        country, bban = ibans[i % len(ibans)]
        iban = _iban(country, bban)
        pools["iban"].append(iban if i % 2 == 0 else iban.replace(" ", ""))

        area = int(rng.integers(101, 665))
        pools["ssn"].append(
            f"{area:03d}-{int(rng.integers(10, 99)):02d}-{int(rng.integers(1000, 9999)):04d}"
        )

        if i % 4 == 3:
            pools["ip"].append(f"2001:db8:{int(rng.integers(1, 9))}a3::8a2e:370:{7330 + i}")
        else:
            a = [203, 198, 192, 10][i % 4]
            b = {203: 0, 198: 51, 192: 168, 10: int(rng.integers(0, 255))}[a]
            pools["ip"].append(f"{a}.{b}.{int(rng.integers(0, 255))}.{int(rng.integers(1, 254))}")

        secret_styles = [
            "sk-proj-" + _alnum(rng, 40),
            "sk-ant-api03-" + _alnum(rng, 48),
            "AKIA" + _alnum(rng, 16, upper=True),
            "ghp_" + _alnum(rng, 36),
            "Bearer eyJhbGciOiJIUzI1NiJ9." + _alnum(rng, 30),
        ]
        pools["secret"].append(secret_styles[i % len(secret_styles)])
    return pools


# Free-text phrases that carry one PII value each ({v}).
PHRASES: dict[str, tuple[str, ...]] = {
    "email": ("reply to {v} when done", "customer email {v}"),
    "phone": ("please call me back at {v}", "mobile {v} after five"),
    "card": ("my card {v} was charged twice", "card number {v} declined"),
    "iban": ("refund to IBAN {v} please", "bank account {v}"),
    "ssn": ("my SSN is {v} for the form", "social security {v}"),
    "ip": ("login from {v} was blocked", "request came from {v}"),
    "secret": ("our key {v} stopped working", "token {v} in the config"),
}
