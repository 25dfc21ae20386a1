//! An event's settings as the API spells them (design §7), for both roles: the guests'
//! form (`GET /api/event/{eid}`: never the blocked words) and the host's (the settings
//! routes: all of them).

use ledger::Settings;
use serde::Serialize;

#[derive(Serialize)]
struct SettingsWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    moderation: &'static str,
    asking: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_words: Option<&'a [String]>,
}

/// `{"title"?, "moderation", "asking"}`, plus `"blocked_words"` for the host.
pub fn settings_json(settings: &Settings, for_host: bool) -> serde_json::Value {
    let wire = SettingsWire {
        title: settings.title.as_deref(),
        moderation: settings.moderation.as_str(),
        asking: settings.asking.as_str(),
        blocked_words: for_host.then_some(&settings.blocked_words[..]),
    };
    // Strings and a list of strings only: serializing cannot fail.
    serde_json::to_value(wire).unwrap_or_default()
}
