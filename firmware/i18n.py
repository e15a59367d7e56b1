# Every text the handheld shows comes from here, in the language of the
# device config ("lang"): one catalog per language in firmware/lang/, of
# which only the configured one is ever imported (a handheld has tens of
# kilobytes of heap). "{}" marks where a value goes, filled in order. The
# gateway sends codes, never text to show: a denial (protocol.messages.DENY_*)
# is rendered from the catalog's DENIALS, whose English is
# protocol.messages.DENIALS itself, and an error code (protocol.errors) from
# its ERRORS.

LANGS = ("zh-Hans", "zh-Hant", "en")
FIELD_KEYS = {1: "name", 2: "phone", 3: "address"}


_LOADED = {}  # type: dict


def catalog(lang):
    """The catalog module of `lang` (English for a language it does not know)."""
    c = _LOADED.get(lang)
    if c is not None:
        return c
    if lang == "zh-Hans":
        from firmware.lang import zh_hans as c
    elif lang == "zh-Hant":
        from firmware.lang import zh_hant as c
    else:
        from firmware.lang import en as c
    _LOADED[lang] = c
    return c


def _fill(s, values):
    for v in values:
        s = s.replace("{}", str(v), 1)
    return s


def text(lang, key, *values):
    """The screen text `key` in `lang`, with values filled in."""
    s = catalog(lang).TEXT.get(key)
    if s is None:
        s = catalog("en").TEXT.get(key, key)
    return _fill(s, values)


def denial(lang, code):
    """What a denial code means, in `lang`."""
    c = catalog(lang)
    s = c.DENIALS.get(code)
    return _fill(c.CODE, (code,)) if s is None else s


def error(lang, code):
    """What a protocol error code means, in `lang`."""
    c = catalog(lang)
    s = c.ERRORS.get(code)
    return _fill(c.CODE, (code,)) if s is None else s
