"""Country names as catalogs spell them -> ISO-3166 alpha-2 codes.

The lake stores countries as alpha-2 codes (``Title.countries``,
``Profile.country``). Catalog files such as the Netflix-titles CSV spell them
out; this table covers every name in that file. Former states keep their
reserved ISO codes (``Soviet Union`` -> ``SU``, ``East Germany`` -> ``DD``),
``West Germany`` maps to ``DE``.
"""

from __future__ import annotations

COUNTRY_CODES: dict[str, str] = {
    "Afghanistan": "AF", "Albania": "AL", "Algeria": "DZ", "Angola": "AO", "Argentina": "AR", "Armenia": "AM",
    "Australia": "AU", "Austria": "AT", "Azerbaijan": "AZ", "Bahamas": "BS", "Bangladesh": "BD", "Belarus": "BY",
    "Belgium": "BE", "Bermuda": "BM", "Botswana": "BW", "Brazil": "BR", "Bulgaria": "BG", "Burkina Faso": "BF",
    "Cambodia": "KH", "Cameroon": "CM", "Canada": "CA", "Cayman Islands": "KY", "Chile": "CL", "China": "CN",
    "Colombia": "CO", "Croatia": "HR", "Cuba": "CU", "Cyprus": "CY", "Czech Republic": "CZ", "Denmark": "DK",
    "Dominican Republic": "DO", "East Germany": "DD", "Ecuador": "EC", "Egypt": "EG", "Ethiopia": "ET",
    "Finland": "FI", "France": "FR", "Georgia": "GE", "Germany": "DE", "Ghana": "GH", "Greece": "GR",
    "Guatemala": "GT", "Hong Kong": "HK", "Hungary": "HU", "Iceland": "IS", "India": "IN", "Indonesia": "ID",
    "Iran": "IR", "Iraq": "IQ", "Ireland": "IE", "Israel": "IL", "Italy": "IT", "Jamaica": "JM", "Japan": "JP",
    "Jordan": "JO", "Kazakhstan": "KZ", "Kenya": "KE", "Kuwait": "KW", "Latvia": "LV", "Lebanon": "LB",
    "Liechtenstein": "LI", "Lithuania": "LT", "Luxembourg": "LU", "Malawi": "MW", "Malaysia": "MY", "Malta": "MT",
    "Mauritius": "MU", "Mexico": "MX", "Mongolia": "MN", "Montenegro": "ME", "Morocco": "MA", "Mozambique": "MZ",
    "Namibia": "NA", "Nepal": "NP", "Netherlands": "NL", "New Zealand": "NZ", "Nicaragua": "NI", "Nigeria": "NG",
    "Norway": "NO", "Pakistan": "PK", "Palestine": "PS", "Panama": "PA", "Paraguay": "PY", "Peru": "PE",
    "Philippines": "PH", "Poland": "PL", "Portugal": "PT", "Puerto Rico": "PR", "Qatar": "QA", "Romania": "RO",
    "Russia": "RU", "Samoa": "WS", "Saudi Arabia": "SA", "Senegal": "SN", "Serbia": "RS", "Singapore": "SG",
    "Slovakia": "SK", "Slovenia": "SI", "Somalia": "SO", "South Africa": "ZA", "South Korea": "KR",
    "Soviet Union": "SU", "Spain": "ES", "Sri Lanka": "LK", "Sudan": "SD", "Sweden": "SE", "Switzerland": "CH",
    "Syria": "SY", "Taiwan": "TW", "Thailand": "TH", "Turkey": "TR", "Uganda": "UG", "Ukraine": "UA",
    "United Arab Emirates": "AE", "United Kingdom": "GB", "United States": "US", "Uruguay": "UY",
    "Vatican City": "VA", "Venezuela": "VE", "Vietnam": "VN", "West Germany": "DE", "Zimbabwe": "ZW",
}  # fmt: skip

_BY_LOWER = {name.lower(): code for name, code in COUNTRY_CODES.items()}


def country_code(name: str) -> str | None:
    """The alpha-2 code of a country name (or of a code given as is); ``None`` when unknown."""
    text = name.strip()
    if len(text) == 2 and text.isalpha() and text.isupper():
        return text
    return _BY_LOWER.get(text.lower())


#: Main language of the countries the synthetic generator uses by default (ISO 639-1).
_LANGUAGES = {
    "DE": "de",
    "FR": "fr",
    "ES": "es",
    "MX": "es",
    "BR": "pt",
    "IN": "hi",
    "JP": "ja",
    "KR": "ko",
    "IT": "it",
}


def language_of(country: str) -> str:
    """The main language of a country for synthetic profiles and titles (``en`` when not listed)."""
    return _LANGUAGES.get(country, "en")
