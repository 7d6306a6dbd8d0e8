"""Locale tags for voice providers: ``en_GB``, ``pt-BR.UTF-8`` or ``zh-Hant`` to the forms APIs
expect (``en-GB``, ``en``), with a main region for a bare language (``fr`` -> ``fr-FR``), and
:class:`LanguageTable`: the closest code a provider documents, or its default."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["DEFAULT_LANGUAGE", "MAIN_REGION", "LanguageTable", "language", "language_region"]

DEFAULT_LANGUAGE = "en-US"

# Language alone -> the region a text-to-speech voice most often exists for.
MAIN_REGION: dict[str, str] = {
    "af": "af-ZA", "ar": "arb", "bg": "bg-BG", "bn": "bn-IN", "ca": "ca-ES", "cmn": "cmn-CN",
    "cs": "cs-CZ", "cy": "cy-GB", "da": "da-DK", "de": "de-DE", "el": "el-GR", "en": "en-US",
    "es": "es-ES", "eu": "eu-ES", "fi": "fi-FI", "fil": "fil-PH", "fr": "fr-FR", "gl": "gl-ES",
    "gu": "gu-IN", "he": "he-IL", "hi": "hi-IN", "hu": "hu-HU", "id": "id-ID", "is": "is-IS",
    "it": "it-IT", "iw": "he-IL", "ja": "ja-JP", "kn": "kn-IN", "ko": "ko-KR", "lt": "lt-LT",
    "lv": "lv-LV", "ml": "ml-IN", "mr": "mr-IN", "ms": "ms-MY", "nb": "nb-NO", "nl": "nl-NL",
    "nn": "nb-NO", "no": "nb-NO", "pa": "pa-IN", "pl": "pl-PL", "pt": "pt-PT", "ro": "ro-RO",
    "ru": "ru-RU", "sk": "sk-SK", "sr": "sr-RS", "sv": "sv-SE", "ta": "ta-IN", "te": "te-IN",
    "th": "th-TH", "tl": "fil-PH", "tr": "tr-TR", "uk": "uk-UA", "vi": "vi-VN", "yue": "zh-HK",
    "zh": "zh-CN",
}  # fmt: skip

_CHINESE_SCRIPTS = {"hans": "CN", "hant": "TW"}


def _subtags(locale: str | None) -> list[str]:
    tag = (locale or "").split(".")[0].split("@")[0].replace("_", "-").strip()
    return [part for part in tag.split("-") if part]


@lru_cache(maxsize=256)
def language(locale: str | None, default: str = "en") -> str:
    """The lower-case language subtag (``en_GB`` -> ``en``), or ``default``."""
    subtags = _subtags(locale)
    if not subtags or not subtags[0].isalpha():
        return default
    return subtags[0].lower()


@lru_cache(maxsize=256)
def language_region(locale: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """``language-REGION`` (``en_gb`` -> ``en-GB``, ``fr`` -> ``fr-FR``), or ``default``."""
    subtags = _subtags(locale)
    if not subtags or not subtags[0].isalpha():
        return default
    lang = subtags[0].lower()
    rest = [part.lower() for part in subtags[1:]]
    region = next((part.upper() for part in rest if len(part) == 2 and part.isalpha()), None)
    if region is None and lang == "zh":
        region = next((_CHINESE_SCRIPTS[p] for p in rest if p in _CHINESE_SCRIPTS), None)
    if region is not None:
        return f"{lang}-{region}"
    main = MAIN_REGION.get(lang)
    return main if main is not None and "-" in main else default


class LanguageTable:
    """One provider's documented text-to-speech languages, and the pick for a locale.

    The pick is a code from ``codes`` or ``default``, never anything else: a provider rejects a
    code it does not list, or reads the text in another language. In order: the whole tag
    (``en-GB-WLS``), its language and region (``zh-Hant`` -> ``zh-TW``), the language alone
    (Vonage's ``ar``), each of those through ``aliases`` first (``zh`` -> ``cmn-CN``); then
    the language's main region (``fr`` -> ``fr-FR``), then the first listed code of the same
    language (``es-AR`` -> ``es-ES`` when there is no ``es-AR``); else ``default``.
    """

    def __init__(
        self, codes: tuple[str, ...], *, default: str, aliases: dict[str, str] | None = None
    ) -> None:
        self.codes = codes
        self.default = default
        self._exact = {code.lower(): code for code in codes}
        self._aliases = {key.lower(): value for key, value in (aliases or {}).items()}
        unknown = [v for v in (default, *self._aliases.values()) if v.lower() not in self._exact]
        if unknown:
            raise ValueError(f"not in the table: {', '.join(unknown)}")
        self._by_language: dict[str, str] = {}
        for code in codes:
            self._by_language.setdefault(code.split("-")[0].lower(), code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.lower() in self._exact

    def pick(self, locale: str | None) -> str:
        """The code to send for ``locale`` (see the class docstring)."""
        subtags = _subtags(locale)
        if not subtags or not subtags[0].isalpha():
            return self.default
        lang = subtags[0].lower()
        whole = "-".join(subtags).lower()
        for key in (whole, language_region(locale, default="").lower(), lang):
            if key in self._exact:
                return self._exact[key]
            if key in self._aliases:
                return self._aliases[key]
        main = MAIN_REGION.get(lang, "").lower()
        if main in self._exact:
            return self._exact[main]
        for candidate in (lang, main.split("-")[0]):
            if candidate in self._by_language:
                return self._by_language[candidate]
        return self.default
