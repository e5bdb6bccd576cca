//! Messages in the user's language. Strings live in `web/locales/*.toml`, never in templates; a
//! template reads them as `t.key`. The language is the one chosen with the switch on every page
//! (a cookie), else the browser's `Accept-Language`, else the user's Entra `preferredLanguage`
//! when we know the user, else English. What is sent during a flow follows the same choice
//! (the flow keeps it); what is sent outside a flow follows `preferredLanguage`.

use std::collections::BTreeMap;

/// A language the portal is translated into (also a command-line value: `en`, `de`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    /// BCP 47 tag, for `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.toml"),
            Lang::De => include_str!("../locales/de.toml"),
        }
    }

    /// The primary subtag of `tag` if we have it (`de-CH` → German).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.tag() == primary)
    }
}

/// The cookie the language switch sets (`__Host-` prefixed behind HTTPS).
pub const CHOICE_COOKIE: &str = "lang";

/// The language of a request: the switch's choice, else [`negotiate`].
pub fn for_request(req: &actix_web::HttpRequest, preferred_language: Option<&str>) -> Lang {
    let chosen = [CHOICE_COOKIE, "__Host-lang"]
        .iter()
        .filter_map(|name| req.cookie(name))
        .find_map(|c| Lang::from_tag(c.value()));
    if let Some(l) = chosen {
        return l;
    }
    let accept = req
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok());
    negotiate(preferred_language, accept)
}

/// Picks the language: `Accept-Language` by quality (the browser's session), then the
/// directory's preference, then English.
pub fn negotiate(preferred_language: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(l) = from_accept(accept_language) {
        return l;
    }
    preferred_language
        .and_then(Lang::from_tag)
        .unwrap_or(Lang::En)
}

/// The best language of an `Accept-Language` header we have, if any.
fn from_accept(accept_language: Option<&str>) -> Option<Lang> {
    let mut offers: Vec<(f32, Lang)> = accept_language
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let lang = Lang::from_tag(it.next()?)?;
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0).then_some((q, lang))
        })
        .collect();
    // Stable sort keeps the header's order among equal qualities.
    offers.sort_by(|a, b| b.0.total_cmp(&a.0));
    offers.first().map(|(_, l)| *l)
}

/// All message catalogs, parsed once at start-up.
#[derive(Debug, Clone)]
pub struct Catalogs {
    by_lang: Vec<(Lang, BTreeMap<String, String>)>,
}

impl Catalogs {
    /// Parses the built-in catalogs. Fails (at start-up, not at the first request) on a broken file.
    pub fn load() -> Result<Self, String> {
        let mut by_lang = Vec::new();
        for lang in Lang::ALL {
            let map: BTreeMap<String, String> = toml::from_str(lang.source())
                .map_err(|e| format!("locales/{}.toml: {e}", lang.tag()))?;
            by_lang.push((lang, map));
        }
        Ok(Self { by_lang })
    }

    /// The whole catalog of one language (what templates see as `t`).
    pub fn catalog(&self, lang: Lang) -> &BTreeMap<String, String> {
        self.by_lang
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, m)| m)
            .unwrap_or(&self.by_lang[0].1)
    }

    /// One message, falling back to English, then to the key itself (visible, never a panic).
    /// A message with a count: `{key}_one` or `{key}_other` by the language's plural rule, with
    /// `{n}` filled in. English and German share the rule (one for exactly 1, other otherwise);
    /// a language with more forms adds its categories here and in its catalog.
    pub fn plural(&self, lang: Lang, key: &str, n: u64) -> String {
        let category = match (lang, n) {
            (Lang::En | Lang::De, 1) => "one",
            (Lang::En | Lang::De, _) => "other",
        };
        let full = format!("{key}_{category}");
        self.catalog(lang)
            .get(&full)
            .or_else(|| self.catalog(Lang::En).get(&full))
            .map_or(full.clone(), |t| t.replace("{n}", &n.to_string()))
    }

    pub fn get<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.catalog(lang)
            .get(key)
            .or_else(|| self.catalog(Lang::En).get(key))
            .map_or(key, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_every_english_key_and_the_same_placeholders() {
        let c = Catalogs::load().unwrap();
        let en = c.catalog(Lang::En);
        for lang in Lang::ALL {
            let other = c.catalog(lang);
            for (key, text) in en {
                let t = other
                    .get(key)
                    .unwrap_or_else(|| panic!("{} lacks {key}", lang.tag()));
                let holes = |s: &str| -> Vec<String> {
                    let mut v: Vec<String> = s
                        .split('{')
                        .skip(1)
                        .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_string()))
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(
                    holes(text),
                    holes(t),
                    "{}: placeholders of {key}",
                    lang.tag()
                );
            }
            assert_eq!(
                other.len(),
                en.len(),
                "{} has keys English lacks",
                lang.tag()
            );
        }
    }

    #[test]
    fn plural_forms_follow_the_count() {
        let c = Catalogs::load().unwrap();
        assert_eq!(
            c.plural(Lang::De, "error_throttled", 1),
            "Zu viele Versuche. Bitte warten Sie eine Minute und versuchen Sie es dann erneut."
        );
        assert!(
            c.plural(Lang::De, "error_throttled", 5)
                .contains("5 Minuten")
        );
        assert!(
            c.plural(Lang::En, "error_throttled", 2)
                .contains("2 minutes")
        );
        assert!(c.plural(Lang::En, "tries_left", 1).contains("once more"));
    }

    #[test]
    fn negotiation_prefers_the_browser_then_the_directory() {
        // The browser's session wins; the directory's preference fills in when it has none.
        assert_eq!(negotiate(Some("de-DE"), Some("en")), Lang::En);
        assert_eq!(negotiate(Some("de-DE"), None), Lang::De);
        assert_eq!(negotiate(Some("de-DE"), Some("fr")), Lang::De);
        assert_eq!(
            negotiate(Some("fr-FR"), Some("fr, de;q=0.8, en;q=0.5")),
            Lang::De
        );
        assert_eq!(negotiate(None, Some("en;q=0.4, de-CH;q=0.9")), Lang::De);
        assert_eq!(negotiate(None, Some("de;q=0, en")), Lang::En);
        assert_eq!(negotiate(None, Some("garbage;;q=x")), Lang::En);
        assert_eq!(negotiate(None, None), Lang::En);
    }
}
