"""TwiML for a voice code: ``<Say>`` in the recipient's language, said twice.

Twilio picks the voice from the account's text-to-speech settings for the ``language`` given,
so only the language is chosen here. The table lists the language tags ``<Say>`` accepts
(Amazon Polly and Google voices, and the legacy Alice set); anything else falls back to the
language's main region, then to ``en-US``.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from runtime.locales import MAIN_REGION

__all__ = ["DEFAULT_LANGUAGE", "SAY_LANGUAGES", "say_language", "voice_twiml"]

DEFAULT_LANGUAGE = "en-US"
SAY_REPEATS = 2

SAY_LANGUAGES: frozenset[str] = frozenset(
    {
        "af-ZA", "ar-AE", "arb", "bg-BG", "bn-IN", "ca-ES", "cmn-CN", "cs-CZ", "cy-GB",
        "da-DK", "de-AT", "de-CH", "de-DE", "el-GR", "en-AU", "en-CA", "en-GB", "en-IE",
        "en-IN", "en-NZ", "en-US", "en-ZA", "es-ES", "es-MX", "es-US", "eu-ES", "fi-FI",
        "fil-PH", "fr-BE", "fr-CA", "fr-FR", "gl-ES", "gu-IN", "he-IL", "hi-IN", "hu-HU",
        "id-ID", "is-IS", "it-IT", "ja-JP", "kn-IN", "ko-KR", "lt-LT", "lv-LV", "ml-IN",
        "mr-IN", "ms-MY", "nb-NO", "nl-BE", "nl-NL", "pa-IN", "pl-PL", "pt-BR", "pt-PT",
        "ro-RO", "ru-RU", "sk-SK", "sr-RS", "sv-SE", "ta-IN", "te-IN", "th-TH", "tr-TR",
        "uk-UA", "vi-VN", "yue-CN", "zh-CN", "zh-HK", "zh-TW",
    }
)  # fmt: skip

_CHINESE_SCRIPTS = {"hans": "zh-CN", "hant": "zh-TW"}


def say_language(locale: str | None) -> str:
    """The ``<Say language>`` for a locale such as ``en``, ``en_GB``, ``pt-BR`` or ``zh-Hant``."""
    tag = (locale or "").split(".")[0].split("@")[0].replace("_", "-").strip()
    subtags = [part for part in tag.split("-") if part]
    if not subtags:
        return DEFAULT_LANGUAGE
    language = subtags[0].lower()
    rest = [part.lower() for part in subtags[1:]]
    region = next((part.upper() for part in rest if len(part) == 2 and part.isalpha()), None)
    if region is not None:
        candidate = f"{language}-{region}"
        if candidate in SAY_LANGUAGES:
            return candidate
    if language == "zh":
        for part in rest:
            if part in _CHINESE_SCRIPTS:
                return _CHINESE_SCRIPTS[part]
    return MAIN_REGION.get(language, DEFAULT_LANGUAGE)


def voice_twiml(text: str, locale: str | None) -> str:
    """The TwiML document of a code call: ``text`` said twice in the locale's language."""
    response = VoiceResponse()
    response.say(text, language=say_language(locale), loop=SAY_REPEATS)
    return str(response)
